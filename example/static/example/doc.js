// A shared document: its title, role and members from GET /api/collab/docs/<id>/, the
// text in a CodeMirror editor bound to the document over the hub (taskstream/collab.js),
// who is here (awareness), and the owner's share form. Server values go in as text only.
import { getCookie } from "../taskstream/client.js";
import { CollabEditor } from "../taskstream/collab.js";
import { hub } from "./shared-hub.js";

const config = JSON.parse(document.getElementById("doc-config").textContent);
const API = `/api/collab/docs/${encodeURIComponent(config.id)}/`;
const $ = (id) => document.getElementById(id);
const statusTag = $("doc-status");
const errorLine = $("doc-error");
const shareForm = $("share");

const STATUS_TEXT = { saved: "Saved", syncing: "Syncing…", offline: "Offline", error: "Not saved" };
const ROLE_TEXT = { owner: "owner", editor: "can edit", viewer: "read only" };
const nameOf = (user) => (typeof user === "string" ? user : user?.username ?? "");

function api(path, method = "GET", body = undefined) {
  return fetch(API + path, {
    method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": getCookie("csrftoken") ?? "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function failure(response) {
  const data = await response.json().catch(() => ({}));
  return data.detail ?? data.message ?? `HTTP ${response.status}`;
}

function showMembers(doc) {
  const owner = nameOf(doc.owner);
  const rows = [];
  if (owner) rows.push({ username: owner, role: "owner" });
  for (const m of doc.members ?? []) rows.push({ username: nameOf(m.user ?? m), role: m.role });
  $("members").replaceChildren(...rows.map(({ username, role }) => {
    const li = document.createElement("li");
    li.className = "member";
    const who = document.createElement("span");
    who.textContent = `${username} (${ROLE_TEXT[role] ?? role})`;
    li.append(who);
    if (doc.role === "owner" && role !== "owner") {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "member-remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${username}`);
      remove.addEventListener("click", async () => {
        const response = await api(`members/${encodeURIComponent(username)}/`, "DELETE");
        if (response.ok) await refresh();
        else $("share-error").textContent = `Could not remove ${username}: ${await failure(response)}`;
      });
      li.append(remove);
    }
    return li;
  }));
}

async function refresh() {
  const response = await api("");
  if (!response.ok) {
    throw new Error(response.status === 404 || response.status === 403
      ? "This document does not exist, or it is not shared with you."
      : `Could not load the document: ${await failure(response)}`);
  }
  const doc = await response.json();
  $("doc-title").textContent = doc.title;
  document.title = `${doc.title} · taskstream demo`;
  const role = $("doc-role");
  role.textContent = ROLE_TEXT[doc.role] ?? doc.role;
  role.hidden = false;
  shareForm.hidden = doc.role !== "owner";
  showMembers(doc);
  return doc;
}

let peersShown = "";

function showPeers(peers) {
  // You first, then the others by name (several tabs of one person: once each). Awareness
  // changes with every cursor move: redraw only when the list itself changed.
  const others = new Map();
  for (const peer of peers) if (!peer.self && !others.has(peer.name)) others.set(peer.name, peer);
  const shown = [...peers.filter((peer) => peer.self),
                 ...[...others.values()].sort((x, y) => x.name.localeCompare(y.name))];
  const key = JSON.stringify(shown.map((peer) => [peer.name, peer.color, peer.self]));
  if (key === peersShown) return;
  peersShown = key;
  $("peers").replaceChildren(...shown.map((peer) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "peer-dot";
    dot.style.backgroundColor = peer.color; // CSSOM: allowed under the page's CSP
    const name = document.createElement("span");
    name.textContent = peer.self ? `${peer.name} (you)` : peer.name;
    li.append(dot, name);
    return li;
  }));
}

function showStatus(status) {
  statusTag.dataset.status = status;
  statusTag.textContent = STATUS_TEXT[status] ?? status;
}

shareForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("share-error").textContent = "";
  const username = shareForm.elements.username.value.trim();
  const response = await api("members/", "POST", { username, role: shareForm.elements.role.value });
  if (!response.ok) {
    $("share-error").textContent = `Could not share with ${username}: ${await failure(response)}`;
    return;
  }
  shareForm.reset();
  await refresh();
});

async function main() {
  let doc;
  try {
    doc = await refresh();
  } catch (exc) {
    errorLine.textContent = exc.message;
    showStatus("error");
    return;
  }
  const readOnly = doc.role === "viewer";
  $("doc-readonly").hidden = !readOnly;
  const editor = new CollabEditor({
    parent: $("editor"), doc: config.id, hub, user: { name: config.user }, readOnly,
    cspNonce: config.nonce, label: `Text of ${doc.title}`,
  });
  editor.on("status", showStatus);
  editor.on("peers", showPeers);
  editor.on("error", (error) => {
    if (error.code === "forbidden") {
      errorLine.textContent = "This document is no longer shared with you as an editor: "
        + "what is shown may be out of date. Reload the page.";
    } else if (error.status) {
      errorLine.textContent = `Could not open the document (${error.code}): ${error.message}`;
    } else {
      errorLine.textContent = `Your last changes were not saved (${error.code}): reload the page. `
        + error.message;
    }
  });
  showStatus(editor.status);
  showPeers(editor.peers);
  // For the browser tests and the curious: the editor of this page.
  window.taskstreamDoc = editor;
}

main();
