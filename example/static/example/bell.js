// The notification bell in the top bar of every page: a live unread count and a dropdown
// of recent notifications. Every open tab holds the same count: reading in one tab
// publishes `notification.read`, which every tab applies.
import { getCookie } from "../taskstream/client.js";
import { hub } from "./shared-hub.js";
import "./connection.js";

const root = document.getElementById("bell");
const button = document.getElementById("bell-button");
const countBadge = document.getElementById("bell-count");
const menu = document.getElementById("bell-menu");
const list = document.getElementById("bell-list");
const readAll = document.getElementById("bell-read-all");
const userId = root.dataset.user;
const items = new Map(); // notification id -> li

function setCount(unread) {
  root.dataset.unread = String(unread);
  countBadge.textContent = unread > 99 ? "99+" : String(unread);
  countBadge.hidden = unread === 0;
  button.setAttribute("aria-label", `Notifications, ${unread} unread`); // the visible count is a word of it
}

function render(n) {
  const li = items.get(n.id) || document.createElement("li");
  li.replaceChildren();
  li.className = n.read ? "bell-item" : "bell-item unread";
  li.dataset.id = String(n.id);
  const title = document.createElement(n.url ? "a" : "span");
  title.className = "bell-title";
  if (n.url) title.href = n.url;
  title.textContent = n.title;
  li.append(title);
  if (n.body) {
    const body = document.createElement("span");
    body.className = "bell-body";
    body.textContent = n.body;
    li.append(body);
  }
  const when = document.createElement("time");
  when.className = "bell-time";
  when.dateTime = n.created_at;
  when.textContent = new Date(n.created_at).toLocaleString();
  li.append(when);
  items.set(n.id, li);
  return li;
}

function drawEmpty() {
  list.querySelector(".bell-empty")?.remove();
  if (items.size === 0) {
    const li = document.createElement("li");
    li.className = "bell-empty";
    li.textContent = "Nothing yet.";
    list.append(li);
  }
}

async function load() {
  const response = await fetch("/api/notifications/?limit=10", { credentials: "same-origin" });
  if (!response.ok) throw new Error(`inbox answered ${response.status}`);
  const inbox = await response.json();
  items.clear();
  list.replaceChildren(...inbox.items.map(render));
  drawEmpty();
  setCount(inbox.unread);
  return inbox.cursor;
}

function markRead(ids, all) {
  for (const [id, li] of items) if (all || ids.includes(id)) li.classList.remove("unread");
}

const cursor = await load();
hub.subscribe(`user:${userId}`, {
  since: cursor,
  onEvent(frame) {
    const data = frame.data || {};
    if (frame.event === "notification.created") {
      list.querySelector(".bell-empty")?.remove();
      list.prepend(render(data));
      while (list.children.length > 10) {
        items.delete(Number(list.lastElementChild.dataset.id));
        list.lastElementChild.remove();
      }
      setCount(data.unread);
    } else if (frame.event === "notification.read") {
      markRead(data.ids || [], data.all);
      setCount(data.unread);
    }
  },
  async onGap() {
    await load(); // missed some: the inbox over HTTP is the truth
  },
});

function toggle(open) {
  menu.hidden = !open;
  button.setAttribute("aria-expanded", String(open));
}

button.addEventListener("click", (event) => {
  event.stopPropagation();
  toggle(menu.hidden);
});
document.addEventListener("click", (event) => {
  if (!menu.hidden && !root.contains(event.target)) toggle(false);
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") toggle(false);
});

readAll.addEventListener("click", async () => {
  const response = await fetch("/api/notifications/read-all/", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": getCookie("csrftoken") || "" },
  });
  if (response.ok) setCount((await response.json()).unread); // the event updates other tabs
});

list.addEventListener("click", (event) => {
  const li = event.target.closest(".bell-item.unread");
  if (!li) return;
  // Reading one: mark it on the server; the event marks it in every tab.
  fetch(`/api/notifications/${li.dataset.id}/read/`, {
    method: "POST",
    keepalive: true, // survives following the notification's link
    credentials: "same-origin",
    headers: { "X-CSRFToken": getCookie("csrftoken") || "" },
  });
});
