// How a job snapshot reads on the demo's pages (the list and a job's own page): labels,
// times, durations, results with links. Every value goes in as text, never as HTML.
import { getCookie } from "../taskstream/client.js";

export const ACTIVE = new Set(["queued", "running", "retrying"]);

export function api(path, body) {
  return fetch(path, {
    method: body === undefined ? "GET" : "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": getCookie("csrftoken") ?? "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export function stateText(job) {
  return job.cancel_requested && ACTIVE.has(job.state) ? "cancelling" : job.state;
}

export function shownPercent(job) {
  return job.state === "succeeded" ? 100 : (job.progress.percent ?? 0);
}

export function progressText(job) {
  const { current, total } = job.progress;
  const shown = shownPercent(job);
  if (total) return `${shown}% (${current} of ${total})`;
  return job.state === "succeeded" ? "100%" : "";
}

const sameDay = (a, b) => a.toDateString() === b.toDateString();

export function timeText(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const clock = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return sameDay(when, new Date()) ? clock : `${when.toLocaleDateString()} ${clock}`;
}

export function timeElement(iso) {
  const time = document.createElement("time");
  time.dateTime = iso;
  time.title = new Date(iso).toLocaleString();
  time.textContent = timeText(iso);
  return time;
}

export function durationText(ms) {
  if (!(ms >= 0)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// The run time: started → finished, or → now while it runs.
export function jobDuration(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : (ACTIVE.has(job.state) ? new Date() : null);
  return end ? durationText(end - new Date(job.started_at)) : "";
}

// <dt>/<dd> pairs for a <dl>: created, started, finished, duration, attempts.
export function fillTimes(dl, job) {
  const rows = [["Created", job.created_at], ["Started", job.started_at], ["Finished", job.finished_at]];
  dl.replaceChildren();
  const add = (term, value) => {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.append(value);
    const pair = document.createElement("div"); // a <div> groups a name with its value in a <dl>
    pair.append(dt, dd);
    dl.append(pair);
  };
  for (const [term, iso] of rows) if (iso) add(term, timeElement(iso));
  const duration = jobDuration(job);
  if (duration) add("Duration", duration);
  if (job.attempt > 1) add("Attempts", String(job.attempt));
}

const LINK = /^(\/[^/]|https?:\/\/)/;

function valueNode(key, value) {
  if (typeof value === "string" && LINK.test(value)) {
    const a = document.createElement("a");
    a.href = value;
    a.textContent = key || value;
    return a;
  }
  return document.createTextNode(`${key ? `${key}: ` : ""}${typeof value === "string" ? value : JSON.stringify(value)}`);
}

// A result as text, with its URLs as links ({"csv": "/api/.../report.csv"} -> a "csv" link).
export function resultNodes(result) {
  const out = document.createDocumentFragment();
  if (result === null || result === undefined) return out;
  if (typeof result !== "object" || Array.isArray(result)) {
    out.append(valueNode("", result));
    return out;
  }
  Object.entries(result).forEach(([key, value], i) => {
    if (i) out.append(" · ");
    out.append(valueNode(key, value));
  });
  return out;
}

export function errorText(job) {
  if (!job.error) return "";
  let text = `${job.error.type}: ${job.error.message}`;
  if (job.state === "retrying" && job.eta) text += ` — retrying at ${timeText(job.eta)}`;
  return text;
}

// Paints a job's snapshot into its card (the jobs list's rows and the job's own page share
// the markup: .bar, .job-percent, .job-message, .job-times, .job-error, .job-result and the
// cancel/retry buttons). `cancellable`: whether this viewer may cancel it at all.
export function paintJob(root, job, { cancellable = true } = {}) {
  root.dataset.state = job.state;
  const shown = shownPercent(job);
  const bar = root.querySelector(".bar");
  bar.setAttribute("aria-valuenow", String(shown));
  bar.firstElementChild.style.width = `${shown}%`;
  root.querySelector(".job-percent").textContent = progressText(job);
  root.querySelector(".job-message").textContent = job.progress.message;
  fillTimes(root.querySelector(".job-times"), job);
  root.querySelector(".job-error").textContent = errorText(job);
  const result = root.querySelector(".job-result");
  result.replaceChildren();
  if (job.state === "succeeded" && job.result !== null) result.append("Result: ", resultNodes(job.result));
  else if (job.result_omitted) result.append("The result is too large for an event: reload the page to see it.");
  root.querySelector('[data-action="cancel"]').hidden = !cancellable || !ACTIVE.has(job.state) || job.cancel_requested;
  const retry = root.querySelector('[data-action="retry"]');
  if (retry) retry.hidden = !["failed", "cancelled"].includes(job.state);
}
