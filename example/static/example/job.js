// One job's page: its snapshot, attempts and children from the server, then live over
// job:<id> (and user:<id> for a parent's children) on the page's shared hub.
import { hub } from "./shared-hub.js";
import {
  api, durationText, fillTimes, jobDuration, paintJob, progressText, stateText, timeElement,
} from "./job-view.js";

const initial = JSON.parse(document.getElementById("job-initial").textContent);
const section = document.getElementById("job");
const stateBadge = document.getElementById("job-state");
const hubBadge = document.getElementById("hub-state");
const notice = document.getElementById("notice");
const attemptsList = document.getElementById("attempts");
const attemptsNote = document.getElementById("attempts-note");
let job = initial.job;
const children = new Map(initial.children.map((c) => [c.id, c]));

function showJob(next) {
  if (job.updated_at && next.updated_at && next.updated_at < job.updated_at) return;
  const runChanged = next.attempt !== job.attempt || next.state !== job.state;
  job = { ...next, label: job.label };
  stateBadge.dataset.state = job.state;
  stateBadge.textContent = stateText(job);
  paintJob(section, job, { cancellable: initial.listed });
  if (runChanged) refreshAttempts();
}

function showAttempts(attempts, complete) {
  attemptsList.replaceChildren(...attempts.map((a) => {
    const li = document.createElement("li");
    li.dataset.outcome = a.outcome;
    const head = document.createElement("div");
    head.className = "attempt-head";
    const title = document.createElement("strong");
    title.textContent = `Attempt ${a.number ?? "?"}`;
    const outcome = document.createElement("span");
    outcome.className = "badge";
    outcome.dataset.state = a.outcome === "retrying" ? "failed" : a.outcome;
    outcome.textContent = a.outcome === "retrying" ? "failed, retried" : a.outcome;
    head.append(title, " ", outcome);
    const when = document.createElement("div");
    when.className = "muted";
    when.append("started ", timeElement(a.started_at));
    if (a.finished_at) {
      when.append(", took ", durationText(new Date(a.finished_at) - new Date(a.started_at)));
    }
    li.append(head, when);
    if (a.error) {
      const error = document.createElement("div");
      error.className = "job-error";
      error.textContent = `${a.error.type}: ${a.error.message}`;
      li.append(error);
    }
    return li;
  }));
  attemptsNote.hidden = complete && attempts.length > 0;
  attemptsNote.textContent = complete ? "Not started yet."
    : attempts.length ? "Earlier attempts are no longer in the job's log (it keeps the last day)."
    : `This job ran ${job.attempt} time${job.attempt === 1 ? "" : "s"}; the details are no longer in its log (it keeps the last day).`;
}

let attemptsPending = null;
function refreshAttempts() {
  // Coalesced: a burst of state events needs one refetch.
  attemptsPending ??= (async () => {
    try {
      const response = await api(`/api/jobs/${job.id}/attempts/`);
      if (response.ok) {
        const data = await response.json();
        showAttempts(data.attempts, data.complete);
      }
    } finally {
      attemptsPending = null;
    }
  })();
}

// The server's fallback label (selectors.job_kind_label) for a child first seen live.
function kindLabel(kind) {
  const tail = kind.split(".").pop().replaceAll("_", " ").trim();
  return tail ? tail[0].toUpperCase() + tail.slice(1) : kind;
}

function childRow(child) {
  let tr = document.querySelector(`#children tr[data-job-id="${CSS.escape(child.id)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.jobId = child.id;
    for (let i = 0; i < 4; i++) tr.append(document.createElement("td"));
    const link = document.createElement("a");
    link.href = `/jobs/${child.id}/`;
    tr.cells[0].append(link);
    document.getElementById("children").append(tr);
  }
  return tr;
}

function showChild(child) {
  const known = children.get(child.id);
  if (known && known.updated_at && child.updated_at && child.updated_at < known.updated_at) return;
  children.set(child.id, { ...child, label: child.label ?? known?.label ?? kindLabel(child.kind) });
  const c = children.get(child.id);
  const tr = childRow(c);
  tr.dataset.state = c.state;
  tr.cells[0].firstElementChild.textContent = c.progress.message ? `${c.label} — ${c.progress.message}` : c.label;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.state = c.state;
  badge.textContent = stateText(c);
  tr.cells[1].replaceChildren(badge);
  tr.cells[2].textContent = progressText(c);
  tr.cells[3].textContent = jobDuration(c);
  document.getElementById("children-card").hidden = false;
  document.getElementById("children-count").textContent = `(${children.size})`;
}

async function act(action) {
  const response = await api(`/api/jobs/${job.id}/${action}/`, {});
  const data = await response.json();
  if (response.ok) showJob(data);
  else notice.textContent = `${action} refused: ${data.detail}`;
}

async function reload() {
  const response = await api(`/api/jobs/${job.id}/`);
  if (response.ok) showJob(await response.json());
}

section.querySelector('[data-action="cancel"]').addEventListener("click", () => act("cancel"));
section.querySelector('[data-action="retry"]')?.addEventListener("click", () => act("retry"));

showJob(job);
showAttempts(initial.attempts, initial.attemptsComplete);
for (const child of initial.children) showChild(child);
setInterval(() => { if (job.state === "running") fillTimes(document.getElementById("job-times"), job); }, 1000);

function showHubState(state) {
  hubBadge.dataset.state = state;
  hubBadge.textContent = state === "open" ? "live" : state;
  hubBadge.title = `Live updates: ${state}`;
}
showHubState(hub.state); // the shared hub may be open already
hub.on("state", showHubState);
hub.subscribe(job.topic, {
  since: job.cursor,
  onEvent(frame) { if (frame.event.startsWith("job.") && frame.data?.id === job.id) showJob(frame.data); },
  onSubscribed(frame) { section.dataset.subscribed = frame.cursor; },
  onGap: reload,
  onError(frame) { notice.textContent = `Live updates unavailable: ${frame.code}`; },
});
if (initial.userTopic) {
  hub.subscribe(initial.userTopic, {
    since: initial.userCursor,
    onEvent(frame) {
      if (frame.event.startsWith("job.") && frame.data?.parent === job.id) showChild(frame.data);
    },
    onGap() { location.reload(); },
  });
}
