// The room page: history (first page rendered by the server, older pages on scroll),
// live messages, presence and typing over the shared hub. Every value from the server
// goes into the page with textContent, never as HTML.
import { HubError, getCookie } from "../taskstream/client.js";
import { hub } from "./shared-hub.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const list = document.getElementById("messages");
const historyStatus = document.getElementById("history-status");
const typingLine = document.getElementById("typing");
const presenceList = document.getElementById("presence");
const presenceCount = document.getElementById("presence-count");
const form = document.getElementById("composer");
const input = document.getElementById("body");
const sendButton = document.getElementById("send");
const errorLine = document.getElementById("composer-error");
const stateTag = document.getElementById("room-state");
const api = `/api/rooms/${encodeURIComponent(config.slug)}/messages/`;
const emptyLine = document.getElementById("room-empty");

let nextBefore = config.nextBefore;
let loadingOlder = false;
const byId = new Map();
for (const li of list.querySelectorAll("li.msg")) byId.set(Number(li.dataset.id), li);

// Messages -----------------------------------------------------------------------------

function timeText(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? "" : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function fill(li, m) {
  li.className = "msg";
  if (m.deleted) li.classList.add("deleted");
  if (m.author && m.author.id === config.me) li.classList.add("mine");
  li.dataset.id = String(m.id);
  li.replaceChildren();
  const author = document.createElement("span");
  author.className = "msg-author";
  author.textContent = m.author ? m.author.username : "deleted user";
  const time = document.createElement("time");
  time.className = "msg-time";
  time.dateTime = m.created_at;
  time.textContent = timeText(m.created_at) + (m.edited_at && !m.deleted ? " (edited)" : "");
  const body = document.createElement("span");
  body.className = "msg-body";
  body.textContent = m.deleted ? "message deleted" : m.body;
  li.dataset.author = m.author ? String(m.author.id) : "";
  li.append(author, time, body);
  addActions(li);
}

// Edit and delete --------------------------------------------------------------------

function addActions(li) {
  li.querySelector(".msg-actions")?.remove();
  if (li.classList.contains("deleted")) return;
  const mine = li.dataset.author === String(config.me);
  if (!mine && !config.staff) return;
  const actions = document.createElement("span");
  actions.className = "msg-actions";
  const who = li.querySelector(".msg-author").textContent;
  const when = li.querySelector(".msg-time").textContent;
  const button = (text, handler) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "msg-action";
    b.textContent = text;
    b.setAttribute("aria-label", `${text} message from ${who} at ${when}`);
    b.addEventListener("click", handler);
    actions.append(b);
  };
  if (mine) button("Edit", () => startEdit(li));
  button("Delete", () => removeMessage(li));
  li.querySelector(".msg-time").after(actions);
}

function messageApi(li, method, body) {
  return fetch(`${api}${li.dataset.id}/`, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": getCookie("csrftoken") ?? "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function answer(response, what) {
  const data = await response.json().catch(() => ({}));
  if (response.ok) {
    upsert(data);
    return true;
  }
  errorLine.textContent = `Could not ${what} the message: ${data.detail ?? response.status}`;
  return false;
}

function startEdit(li) {
  if (li.querySelector("form")) return;
  const body = li.querySelector(".msg-body");
  const form = document.createElement("form");
  form.className = "msg-edit";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.textContent = "Edit message";
  const area = document.createElement("textarea");
  area.id = `edit-${li.dataset.id}`;
  label.htmlFor = area.id;
  area.rows = 2;
  area.maxLength = config.maxLength;
  area.required = true;
  area.value = body.textContent;
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "button small";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "button ghost small";
  cancel.textContent = "Cancel";
  form.append(label, area, save, cancel);
  body.hidden = true;
  body.after(form);
  const close = () => {
    form.remove();
    body.hidden = false;
    li.querySelector('.msg-action')?.focus();
  };
  cancel.addEventListener("click", close);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); close(); }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorLine.textContent = "";
    save.disabled = true;
    // The answer redraws the message (and the event does in every other tab).
    if (!(await answer(await messageApi(li, "PATCH", { body: area.value }), "edit"))) save.disabled = false;
  });
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

async function removeMessage(li) {
  if (!window.confirm("Delete this message? Everyone in the room will see it was deleted.")) return;
  errorLine.textContent = "";
  if (await answer(await messageApi(li, "DELETE"), "delete")) input.focus();
}

function nearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

// Insert or update by id, keeping id order: replays, reconnects and overlapping history
// pages can all deliver a message this page already shows; it is never shown twice.
function upsert(m) {
  const existing = byId.get(m.id);
  if (existing) {
    fill(existing, m);
    return existing;
  }
  const li = document.createElement("li");
  fill(li, m);
  byId.set(m.id, li);
  emptyLine.hidden = true;
  let after = list.lastElementChild;
  while (after && Number(after.dataset.id) > m.id) after = after.previousElementSibling;
  if (after) after.after(li);
  else list.prepend(li);
  return li;
}

function showLive(m) {
  const stick = nearBottom() || (m.author && m.author.id === config.me);
  upsert(m);
  if (stick) list.scrollTop = list.scrollHeight;
}

async function fetchPage(before) {
  const url = before ? `${api}?before=${before}` : api;
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`history answered ${response.status}`);
  return response.json();
}

function setHistoryStatus() {
  historyStatus.replaceChildren();
  if (nextBefore === null) {
    historyStatus.textContent = "Beginning of the room";
    return;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.id = "older";
  button.className = "button ghost small";
  button.textContent = loadingOlder ? "Loading…" : "Load older messages";
  button.disabled = loadingOlder;
  button.addEventListener("click", loadOlder);
  historyStatus.append(button);
}

async function loadOlder() {
  if (loadingOlder || nextBefore === null) return;
  loadingOlder = true;
  setHistoryStatus();
  try {
    const page = await fetchPage(nextBefore);
    const height = list.scrollHeight;
    for (const m of page.messages) upsert(m);
    list.scrollTop += list.scrollHeight - height; // keep what the reader was looking at
    nextBefore = page.next_before;
  } catch (error) {
    errorLine.textContent = `Could not load older messages: ${error.message}`;
  } finally {
    loadingOlder = false;
    setHistoryStatus();
  }
}

list.addEventListener("scroll", () => {
  if (list.scrollTop < 40) loadOlder();
});
setHistoryStatus();
for (const li of byId.values()) addActions(li); // the server-rendered page
list.scrollTop = list.scrollHeight;

// Presence and typing ------------------------------------------------------------------

const present = new Map(); // user id -> username

function drawPresence() {
  presenceList.replaceChildren();
  const names = [...present.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  for (const [id, name] of names) {
    const li = document.createElement("li");
    li.dataset.user = String(id);
    li.textContent = id === config.me ? `${name} (you)` : name;
    presenceList.append(li);
  }
  presenceCount.textContent = `(${present.size})`;
}

const typers = new Map(); // user id -> { name, timer }

function drawTyping() {
  const names = [...typers.values()].map((t) => t.name);
  typingLine.textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…`
    : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

function stopTyping(userId) {
  const typer = typers.get(userId);
  if (!typer) return;
  clearTimeout(typer.timer);
  typers.delete(userId);
  drawTyping();
}

function startTyping(user) {
  if (!user || user.id === config.me) return;
  stopTyping(user.id);
  const timer = setTimeout(() => stopTyping(user.id), config.typingInterval * 1000 + 2000);
  typers.set(user.id, { name: user.username, timer });
  drawTyping();
}

// Live ---------------------------------------------------------------------------------

hub.on("state", (state) => {
  stateTag.dataset.state = state;
  stateTag.textContent = state === "open" ? "live" : state;
});

hub.subscribe(config.topic, {
  since: config.cursor,
  onSubscribed(frame) {
    // Fresh after every (re)subscribe: who is here now, on any server.
    present.clear();
    for (const user of frame.presence || []) present.set(user.id, user.username);
    drawPresence();
  },
  onEvent(frame) {
    const data = frame.data || {};
    switch (frame.event) {
      case "message.created":
        stopTyping(data.author && data.author.id);
        showLive(data);
        break;
      case "message.edited":
      case "message.deleted":
        if (byId.has(data.id)) upsert(data);
        break;
      case "presence.joined":
        present.set(data.user.id, data.user.username);
        drawPresence();
        break;
      case "presence.left":
        present.delete(data.user.id);
        stopTyping(data.user.id);
        drawPresence();
        break;
      case "typing":
        startTyping(data.user);
        break;
    }
  },
  async onGap() {
    // Messages were lost from the live log (a long absence): reload the latest page.
    const page = await fetchPage(null);
    for (const m of page.messages) upsert(m);
    list.scrollTop = list.scrollHeight;
  },
  onError(frame) {
    errorLine.textContent = `Cannot join this room: ${frame.message}`;
  },
});

// Composer -----------------------------------------------------------------------------

const REASONS = {
  rate_limited: "You are sending messages too fast; wait a few seconds.",
  too_large: `A message is at most ${config.maxLength} characters.`,
  disconnected: "The connection dropped while sending; check whether it arrived.",
  timeout: "The server did not answer in time; check whether it arrived.",
};

let lastTyping = 0;
input.addEventListener("input", () => {
  const now = Date.now();
  if (!input.value.trim() || now - lastTyping < config.typingInterval * 1000) return;
  lastTyping = now;
  hub.publish(config.topic, "typing", {}).catch(() => {}); // best effort, at most once
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = input.value;
  if (!body.trim()) return;
  errorLine.textContent = "";
  sendButton.disabled = true;
  try {
    await hub.publish(config.topic, "message", { body });
    input.value = "";
    lastTyping = 0;
  } catch (error) {
    const code = error instanceof HubError ? error.code : "error";
    errorLine.textContent = REASONS[code] || `Not sent: ${error.message}`;
  } finally {
    sendButton.disabled = false;
    input.focus();
  }
});
