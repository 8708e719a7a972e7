// The "My jobs" list: rows from the server's snapshots, then live over user:<id> on the
// page's shared hub. Filters and pages are plain links (?state=&kind=&page=).
import { hub } from "./shared-hub.js";
import { api, fillTimes, paintJob, stateText } from "./job-view.js";

const initial = JSON.parse(document.getElementById("jobs-initial").textContent);
const list = document.getElementById("jobs");
const template = document.getElementById("job-template");
const notice = document.getElementById("notice");
const badge = document.getElementById("hub-state");
const jobs = new Map(); // id -> latest snapshot shown
const PAGE_SIZE = Math.max(initial.jobs.length, 20);
const countLine = document.getElementById("count");
let count = initial.count;

// What this page lists (selectors.job_list, with the page's filters).
function listed(job) {
  return !job.parent && job.kind in initial.kinds
    && (!initial.filters.kind || job.kind === initial.filters.kind)
    && (!initial.filters.state || job.state === initial.filters.state);
}

function rowFor(id, create) {
  let li = list.querySelector(`li[data-job-id="${CSS.escape(id)}"]`);
  if (!li && create) {
    list.querySelector(".empty")?.remove();
    li = template.content.firstElementChild.cloneNode(true);
    li.dataset.jobId = id;
    const label = li.querySelector(".job-kind");
    label.id = `job-${id}-label`;
    label.href = `/jobs/${id}/`;
    li.querySelector(".bar").setAttribute("aria-labelledby", label.id);
    li.querySelector('[data-action="cancel"]').addEventListener("click", () => act(id, "cancel"));
    li.querySelector('[data-action="retry"]').addEventListener("click", () => act(id, "retry"));
    list.prepend(li);
    if (initial.jobs.every((j) => j.id !== id)) {
      count += 1; // a job started since the page was rendered
      if (countLine) countLine.textContent = countLine.textContent.replace(/^\d+ jobs?/, `${count} job${count === 1 ? "" : "s"}`);
    }
    while (list.children.length > PAGE_SIZE) list.lastElementChild.remove();
  }
  return li;
}

// Snapshots are whole states: apply one unless an even newer one is already shown
// (a replay after the page's own snapshot repeats older states).
function show(job, { create = true } = {}) {
  const known = jobs.get(job.id);
  if (known && known.updated_at && job.updated_at && job.updated_at < known.updated_at) return;
  const li = rowFor(job.id, create);
  if (!li) return;
  jobs.set(job.id, job);
  const label = initial.kinds[job.kind] ?? job.kind;
  li.querySelector(".job-kind").textContent = label;
  li.querySelector(".job-id").textContent = job.id.slice(0, 8);
  const state = li.querySelector(".job-state");
  state.textContent = stateText(job);
  state.dataset.state = job.state;
  // A live region from the second state on: rendering the list announces nothing, each
  // later change of a job's state is read out (a short status, not the whole list).
  state.setAttribute("aria-live", "polite");
  paintJob(li, job);
  for (const button of li.querySelectorAll("[data-action]")) {
    button.setAttribute("aria-label", `${button.textContent} ${label} ${job.id.slice(0, 8)}`);
  }
}

async function act(id, action) {
  const response = await api(`/api/jobs/${id}/${action}/`, {});
  const data = await response.json();
  if (response.ok) show(data);
  else notice.textContent = `${action} refused: ${data.detail}`;
}

async function reload() {
  // After a gap: this page's jobs over HTTP, then the live events that follow them.
  const query = new URLSearchParams({ ...initial.filters, page: String(initial.page) });
  const response = await api(`/api/jobs/?${query}`);
  if (!response.ok) return;
  const page = await response.json();
  for (const job of page.items.reverse()) { jobs.delete(job.id); show(job); }
}

for (const job of [...initial.jobs].reverse()) show(job);

// Durations of running jobs tick without an event.
setInterval(() => {
  for (const job of jobs.values()) if (job.state === "running") fillTimes(rowFor(job.id, false).querySelector(".job-times"), job);
}, 1000);

const form = document.getElementById("start");
const kindSelect = form.elements.kind;
kindSelect.addEventListener("change", () => {
  for (const label of form.querySelectorAll("[data-for]")) {
    label.toggleAttribute("data-active", label.dataset.for === kindSelect.value);
  }
});
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const kind = kindSelect.value;
  const params = kind === "demo.slow"
    ? { steps: Number(form.elements.steps.value), step_seconds: Number(form.elements.step_seconds.value) }
    : { fail_times: Number(form.elements.fail_times.value) };
  notice.textContent = "";
  const response = await api("/api/jobs/", { kind, params });
  const data = await response.json();
  if (response.status !== 202) notice.textContent = `Not started: ${data.detail}`;
  else if (initial.page === 1 && listed(data)) show(data);
  else notice.textContent = `Started: ${initial.kinds[kind] ?? kind}. It is not on this page (filters or page).`;
});

function showHubState(state) {
  badge.dataset.state = state;
  badge.textContent = state === "open" ? "live" : state;
  badge.title = `Live updates: ${state}`;
}
showHubState(hub.state); // the shared hub may be open already
hub.on("state", showHubState);
hub.subscribe(initial.topic, {
  since: initial.cursor,
  onEvent(frame) {
    const job = frame.data;
    if (!frame.event.startsWith("job.") || !job || !job.id) return;
    if (jobs.has(job.id)) show(job, { create: false });
    else if (initial.page === 1 && listed(job)) show(job);
  },
  onSubscribed(frame) { list.dataset.subscribed = frame.cursor; },
  onGap: reload,
  onError(frame) { notice.textContent = `Live updates unavailable: ${frame.code}`; },
});
