// The workers page: the server lists the workers that answered an inspect; each
// `monitor.summary` on `ops` fills in their last heartbeat and status, and adds the workers
// only the monitor knows (offline ones). When the monitor sees an online worker the list
// lacks, or one the list shows is gone, the list is fetched again (at most every 10 s).
import { refresh, summaries } from "./ops-live.js";

const REFETCH_EVERY_MS = 10_000;
let lastRefetch = Date.now();
let lastSummary = null;

function rowFor(hostname) {
  const body = document.querySelector("#workers tbody");
  for (const row of body.rows) if (row.dataset.hostname === hostname) return row;
  const row = document.getElementById("worker-row").content.firstElementChild.cloneNode(true);
  row.dataset.hostname = hostname;
  row.querySelector('[data-field="hostname"]').textContent = hostname;
  body.append(row);
  document.getElementById("no-workers")?.remove();
  return row;
}

function ago(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

// A summary's worker: {online, heartbeat_at (ISO)} from the monitor's table, or
// {alive, heartbeat (Unix seconds)} from Celery's in-memory state (older monitors).
function heartbeatOf(worker) {
  if (typeof worker.heartbeat === "number") return worker.heartbeat;
  if (typeof worker.heartbeat_at === "string") return Date.parse(worker.heartbeat_at) / 1000;
  return null;
}

function apply(summary) {
  const now = Date.now() / 1000;
  let stale = false;
  for (const worker of summary.workers ?? []) {
    const row = rowFor(worker.hostname);
    const online = Boolean(worker.online ?? worker.alive);
    const status = row.querySelector('[data-field="status"]');
    status.dataset.state = online ? "open" : "offline";
    status.textContent = online ? "online" : "offline";
    const reason = row.querySelector('[data-field="reason"]');
    if (reason) reason.textContent = online ? "" : (worker.offline_reason ?? "");
    const beat = heartbeatOf(worker);
    if (beat !== null && !Number.isNaN(beat)) {
      const when = new Date(beat * 1000);
      row.querySelector('[data-field="heartbeat"]').textContent =
        `${when.toTimeString().slice(0, 8)} (${ago(now - beat)})`;
    }
    if (typeof worker.processed === "number") {
      row.querySelector('[data-field="processed"]').textContent = String(worker.processed);
    }
    if (online !== ("inspected" in row.dataset)) stale = true;
  }
  if (stale && Date.now() - lastRefetch > REFETCH_EVERY_MS) {
    lastRefetch = Date.now();
    refresh();
  }
}

summaries.addEventListener("summary", (e) => { lastSummary = e.detail; apply(e.detail); });
// A fresh list has no heartbeats yet: put the last summary's back at once.
document.getElementById("ops-region").addEventListener("ops:refreshed", () => {
  if (lastSummary) apply(lastSummary);
});
