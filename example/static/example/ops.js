// The operations overview, live: every `jobs.changed` or `audit.created` on the staff-only
// `ops` topic refetches the numbers and the server-drawn chart (at most one fetch in flight).
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
  },
  onGap() { refresh(); },
});
