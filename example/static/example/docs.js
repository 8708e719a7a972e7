// The Docs list: your documents from GET /api/collab/docs/, and a form that starts one
// (POST) and opens it. Every value from the server goes into the page as text.
import { getCookie } from "../taskstream/client.js";

const API = "/api/collab/docs/";
const list = document.getElementById("doc-list");
const status = document.getElementById("docs-status");
const form = document.getElementById("new-doc");
const error = document.getElementById("new-doc-error");

const nameOf = (user) => (typeof user === "string" ? user : user?.username ?? "");

async function load() {
  let docs;
  try {
    const response = await fetch(API, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    docs = await response.json();
  } catch (exc) {
    status.textContent = `Could not load your documents (${exc.message}).`;
    return;
  }
  docs = Array.isArray(docs) ? docs : docs.items ?? [];
  list.replaceChildren(...docs.map((doc) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `/docs/${encodeURIComponent(doc.id)}/`;
    link.textContent = doc.title;
    const meta = document.createElement("span");
    meta.className = "doc-meta muted";
    const owner = nameOf(doc.owner);
    meta.textContent = [doc.role === "viewer" ? "read only" : doc.role, owner && `by ${owner}`]
      .filter(Boolean).join(" · ");
    li.append(link, meta);
    return li;
  }));
  status.textContent = docs.length ? "" : "No documents yet: start one.";
  status.hidden = docs.length > 0;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch(API, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": getCookie("csrftoken") ?? "" },
      body: JSON.stringify({ title: form.elements.title.value }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail ?? data.message ?? `HTTP ${response.status}`);
    window.location.assign(`/docs/${encodeURIComponent(data.id)}/`);
  } catch (exc) {
    error.textContent = `Could not create the document: ${exc.message}`;
    button.disabled = false;
  }
});

load();
