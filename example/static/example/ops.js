// The operations overview, live: every `jobs.changed` or `audit.created` on the staff-only
// `ops` topic refetches the numbers and the server-drawn chart (at most one fetch in flight);
// each `monitor.summary` is shown as it comes.
import { hub } from "./shared-hub.js";
import { api } from "./job-view.js";

const initial = JSON.parse(document.getElementById("ops-initial").textContent);
const badge = document.getElementById("hub-state");
const chart = document.getElementById("ops-chart");
let fetching = false;
let again = false;

function show(data) {
  for (const el of document.querySelectorAll("[data-stat]")) {
    const key = el.dataset.stat;
    let value = data[key];
    if (key === "failure_rate") value = value === null ? "–" : `${Math.round(value * 100)} %`;
    if (value === null || value === undefined) value = "?";
    el.textContent = String(value);
  }
  // Our own server's SVG of numbers (taskstream.ops.chart), parsed as SVG, not as HTML.
  const svg = new DOMParser().parseFromString(data.chart_svg, "image/svg+xml").documentElement;
  chart.replaceChildren(document.importNode(svg, true));
}

async function refresh() {
  if (fetching) { again = true; return; }
  fetching = true;
  try {
    do {
      again = false;
      const response = await api("/api/ops/overview/");
      if (response.ok) show(await response.json());
    } while (again);
  } finally {
    fetching = false;
  }
}

// The events monitor's summary carries its numbers and chart: shown as they arrive, no fetch
// (the monitor sends at most one per OPS_PULSE_INTERVAL, however many tasks run).
const monitorChart = document.getElementById("ops-monitor-chart");
const alerts = document.getElementById("ops-alerts");

function showMonitor(data) {
  const values = {
    succeeded: data.tasks.succeeded,
    failed: data.tasks.failed,
    failure_rate: data.failure_rate === null ? "–" : `${Math.round(data.failure_rate * 100)} %`,
    queue_wait: data.queue_wait === null ? "–" : `${Math.round(data.queue_wait)} s`,
    workers_up: data.workers_up,
  };
  for (const el of document.querySelectorAll("[data-monitor]")) {
    el.textContent = String(values[el.dataset.monitor]);
  }
  const items = data.alerts.map((alert) => {
    const li = document.createElement("li");
    li.className = "alert-open";
    li.textContent = alert.detail;
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No open alerts.";
    items.push(li);
  }
  alerts.replaceChildren(...items);
  const svg = new DOMParser().parseFromString(data.chart_svg, "image/svg+xml").documentElement;
  monitorChart.replaceChildren(document.importNode(svg, true));
  document.getElementById("ops-monitor").dataset.summaryAt = String(Date.now());
}

function showHubState(state) {
  badge.dataset.state = state;
  badge.textContent = state === "open" ? "live" : state;
}
showHubState(hub.state);
hub.on("state", showHubState);
hub.subscribe(initial.topic, {
  since: initial.cursor,
  onEvent(frame) {
    if (frame.event === "jobs.changed" || frame.event === "audit.created") refresh();
    else if (frame.event === "monitor.summary") showMonitor(frame.data);
  },
  onGap() { refresh(); },
});
