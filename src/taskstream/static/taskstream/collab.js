// taskstream collaborative editor: a CodeMirror 6 editor bound to a shared document
// (taskstream.collab, docs/collab.md) over the hub, with other editors' cursors and a
// "saved / syncing / offline" status.
//
//   import { Hub } from "/static/taskstream/client.js";
//   import { CollabEditor } from "/static/taskstream/collab.js";
//   const editor = new CollabEditor({ parent, doc: 42, hub: new Hub(), user: { name: "ann" } });
//   editor.on("status", (status) => badge.textContent = status);   // saved | syncing | offline | error
//   editor.on("peers", (peers) => ...);                             // who else has it open
//   await editor.ready;                                             // first sync done
//
// How it keeps every copy converging (a CRDT: Yjs, with the server's copy in pycrdt):
// * Join: POST /sync/ with our state vector; the answer is what we lack, the server's
//   state vector and the hub cursor of doc:<id> at that moment; we subscribe from that
//   cursor, so nothing published after the snapshot is missed.
// * Every local change is queued until the server acknowledges it (`published`), and
//   resent after a drop or a timeout: an update applied twice is harmless, one never
//   sent would be lost. That queue is what "saved" means: empty and nothing in flight.
// * Remote `update` events are applied as they come; our own echo is skipped by `client`.
// * `gap` (we were away longer than the topic's retained window): sync over HTTP again,
//   then push what the server lacks (Y.encodeStateAsUpdate against its state vector).
// * Awareness (cursor, name, colour) is ephemeral: published on change, renewed every
//   15 s by y-protocols, and a peer silent for 30 s disappears.
import { getCookie } from "./client.js";
import {
  Awareness,
  Compartment,
  EditorState,
  EditorView,
  Y,
  applyAwarenessUpdate,
  defaultKeymap,
  drawSelection,
  encodeAwarenessUpdate,
  fromBase64,
  highlightSpecialChars,
  indentWithTab,
  keymap,
  remoteSelections,
  removeAwarenessStates,
  toBase64,
  yCollab,
  yUndoManagerKeymap,
} from "./vendor/collab-editor.js";

export const Status = Object.freeze({
  SAVED: "saved",
  SYNCING: "syncing",
  OFFLINE: "offline",
  ERROR: "error",
});

// Colours for cursors and their name labels: each keeps white text above 4.5:1 contrast.
export const COLOURS = Object.freeze([
  "#b91c1c", "#1d4ed8", "#047857", "#7e22ce", "#c2410c", "#0e7490", "#be185d", "#4d7c0f",
]);

/** A stable colour for a name, so a person has the same colour in every tab. */
export function colourFor(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return COLOURS[hash % COLOURS.length];
}

const REMOTE = "taskstream-remote"; // the origin of changes that came from the server
const FLUSH_DELAY = 100; // ms: keystrokes within it go out as one update (the hub paces frames)
const AWARENESS_DELAY = 250; // ms: cursor moves within it go out as one awareness update
// Raw bytes of queued updates merged into one publish: under COLLAB_MAX_UPDATE_BYTES (32 KiB
// by default) with room to spare, as merging may add a little.
const BATCH_BYTES = 24 * 1024;
const RETRY_MAX = 10_000;
// Failures that mean "not answered": the update may or may not have arrived; send again.
const RESEND = new Set(["timeout", "disconnected", "rate_limited", "unavailable"]);

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A refused HTTP call or hub answer: `code` from the server, or "network". */
export class CollabError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.name = "CollabError";
    this.code = code;
    this.status = status;
  }
}

export class CollabEditor {
  #hub;
  #id;
  #api;
  #topic;
  #clientId = randomId();
  #listeners = new Map();
  #status = Status.SYNCING;
  #synced = false;
  #queue = []; // local updates the server has not acknowledged, oldest first
  #sending = false;
  #flushTimer = null;
  #retryTimer = null;
  #retryDelay = 500;
  #oneByOne = false; // after a too_large batch: send queued updates singly
  #repairing = false; // a bad_update answer was repaired by a re-sync, not yet acknowledged
  #resyncing = false; // no update goes out while the server's state vector is being fetched
  #awarenessTimer = null;
  #awarenessOff = false;
  #sub = null;
  #offState;
  #readOnly;
  #editable = new Compartment();
  #fatal = null;
  #destroyed = false;
  #onPageHide = () => this.#leave();

  /**
   * @param {object} options
   * @param {HTMLElement} options.parent  where the editor goes
   * @param {number|string} options.doc  the document's id
   * @param {import("./client.js").Hub} options.hub
   * @param {{name: string, color?: string}} options.user  shown beside your cursor to others
   * @param {boolean} [options.readOnly]  viewers: nothing typed, nothing sent
   * @param {string} [options.api]  the documents' API root
   * @param {string|null} [options.cspNonce]  for CodeMirror's <style> under a strict CSP
   * @param {string} [options.label]  the editor's accessible name
   */
  constructor({ parent, doc, hub, user, readOnly = false, api = "/api/collab/docs/",
                cspNonce = null, label = "Document text" }) {
    this.#hub = hub;
    this.#id = doc;
    this.#api = `${api}${encodeURIComponent(doc)}/`;
    this.#topic = `doc:${doc}`;
    this.#readOnly = readOnly;
    this.ydoc = new Y.Doc();
    this.ytext = this.ydoc.getText("text");
    this.awareness = new Awareness(this.ydoc);
    const color = user.color || colourFor(user.name);
    this.awareness.setLocalStateField("user", { name: user.name, color, colorLight: `${color}33` });
    this.undoManager = new Y.UndoManager(this.ytext);
    /** Syncs over HTTP after the first (a `gap`, a `bad_update`). */
    this.resyncs = 0;

    this.ydoc.on("update", (update, origin) => {
      if (origin === REMOTE || this.#readOnly) return;
      this.#queue.push(update);
      this.#scheduleFlush();
      this.#updateStatus();
    });
    this.awareness.on("update", ({ added }, origin) => {
      if (origin !== REMOTE) this.#scheduleAwareness();
      // Someone new: tell them about us now rather than at our next 15 s renewal.
      else if (added.some((id) => id !== this.ydoc.clientID)) this.#scheduleAwareness();
    });
    this.awareness.on("change", () => this.#emit("peers", this.peers));
    this.#offState = hub.on("state", (state) => {
      if (state === "open") {
        this.#flush();
        this.#scheduleAwareness();
      }
      this.#updateStatus();
    });
    globalThis.addEventListener?.("pagehide", this.#onPageHide);

    this.view = new EditorView({
      parent,
      state: EditorState.create({
        doc: "",
        extensions: [
          highlightSpecialChars(),
          drawSelection(),
          EditorView.lineWrapping,
          keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
          yCollab(this.ytext, null, { undoManager: this.undoManager }),
          remoteSelections(this.ytext, this.awareness),
          this.#editable.of(this.#editableExtensions(false)),
          EditorView.contentAttributes.of({ "aria-label": label }),
          ...(cspNonce ? [EditorView.cspNonce.of(cspNonce)] : []),
        ],
      }),
    });
    /** Resolves once the document's text is here (first sync); rejects if refused. */
    this.ready = this.#start();
    this.ready.catch(() => {}); // reported through "error" too
  }

  /** saved | syncing | offline | error */
  get status() { return this.#status; }
  /** The text as it is now. */
  get text() { return this.ytext.toString(); }
  get readOnly() { return this.#readOnly; }
  /** This editor's id in `update` events (`client`). */
  get clientId() { return this.#clientId; }
  /** Local changes the server has not acknowledged yet. */
  get unsaved() { return this.#queue.length; }

  /** Everyone with the document open here and elsewhere: {clientId, name, color, self}. */
  get peers() {
    const peers = [];
    this.awareness.getStates().forEach((state, clientId) => {
      const user = state.user;
      if (user && typeof user.name === "string") {
        peers.push({ clientId, name: user.name, color: user.color, self: clientId === this.ydoc.clientID });
      }
    });
    return peers;
  }

  /**
   * Listen: "status" (status), "peers" (peers), "error" (CollabError). Returns a function
   * that removes the listener.
   */
  on(name, fn) {
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(fn);
    return () => this.#listeners.get(name)?.delete(fn);
  }

  /** Viewers (and editors whose role was taken away) get a read-only editor. */
  setReadOnly(readOnly) {
    this.#readOnly = readOnly;
    this.view.dispatch({ effects: this.#editable.reconfigure(this.#editableExtensions(this.#synced)) });
  }

  /** Stop: unsubscribe, tell the others we left, remove the editor. */
  destroy() {
    if (this.#destroyed) return;
    this.#leave();
    this.#destroyed = true;
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#awarenessTimer);
    this.#offState();
    this.#sub?.close();
    globalThis.removeEventListener?.("pagehide", this.#onPageHide);
    this.awareness.destroy();
    this.view.destroy();
    this.ydoc.destroy();
  }

  // -- joining and catching up -------------------------------------------------------------

  #editableExtensions(synced) {
    // Nothing can be typed before the first sync: the text would appear in front of the
    // document's and confuse the reader (it would merge correctly, but look wrong).
    const editable = synced && !this.#readOnly;
    return [EditorState.readOnly.of(!editable), EditorView.editable.of(editable)];
  }

  async #start() {
    let cursor;
    for (;;) {
      try {
        cursor = await this.#sync();
        break;
      } catch (error) {
        if (this.#destroyed) throw error;
        if (error.code !== "network") {
          this.#fail(error);
          throw error;
        }
        // Offline at load, or the server restarting: try again, sooner once the hub is back.
        await this.#wait();
      }
    }
    this.#synced = true;
    this.view.dispatch({ effects: this.#editable.reconfigure(this.#editableExtensions(true)) });
    this.#sub = this.#hub.subscribe(this.#topic, {
      since: cursor,
      onEvent: (frame) => this.#onEvent(frame),
      onGap: () => this.#resync(),
      onError: (frame) => this.#fail(new CollabError(frame.code, frame.message)),
    });
    this.#flush();
    this.#scheduleAwareness();
    this.#updateStatus();
  }

  #wait() {
    return new Promise((resolve) => {
      const delay = this.#retryDelay;
      this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX);
      const off = this.#hub.on("state", (state) => {
        if (state === "open") done();
      });
      const timer = setTimeout(() => done(), delay);
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  /** One sync round over HTTP: apply what we lack, queue what the server lacks. */
  async #sync() {
    let response;
    try {
      response = await fetch(`${this.#api}sync/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": getCookie("csrftoken") ?? "" },
        body: JSON.stringify({ state_vector: toBase64(Y.encodeStateVector(this.ydoc)) }),
      });
    } catch (error) {
      throw new CollabError("network", String(error));
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      // 5xx: a server restarting; 4xx: refused (not a member, no such document).
      const code = response.status >= 500 ? "network" : (data.code || `http_${response.status}`);
      throw new CollabError(code, data.detail || data.message || response.statusText, response.status);
    }
    if (data.update) Y.applyUpdate(this.ydoc, fromBase64(data.update), REMOTE);
    if (!this.#readOnly && data.state_vector) {
      const missing = Y.encodeStateAsUpdate(this.ydoc, fromBase64(data.state_vector));
      // [0, 0]: no structs, no deletions. Anything else the server lacks is pushed; but a
      // diff over the update limit would be refused, and our unacknowledged edits are still
      // queued (in pieces that fit): then they alone go.
      if (missing.length > 2 && (missing.length <= BATCH_BYTES || !this.#queue.length)) {
        this.#queue.push(missing);
      }
    }
    this.version = data.version;
    this.#retryDelay = 500;
    return data.cursor;
  }

  async #resync() {
    // The subscription holds later events until this settles, then goes on from the gap.
    this.resyncs += 1;
    this.#resyncing = true;
    try {
      await this.#resyncRounds();
    } finally {
      this.#resyncing = false;
    }
    this.#flush();
    this.#updateStatus();
  }

  async #resyncRounds() {
    for (;;) {
      try {
        await this.#sync();
        break;
      } catch (error) {
        if (this.#destroyed) return;
        if (error.code !== "network") return this.#fail(error);
        await this.#wait();
      }
    }
  }

  #onEvent(frame) {
    const data = frame.data || {};
    try {
      if (frame.event === "update") {
        if (data.client === this.#clientId || typeof data.update !== "string") return;
        Y.applyUpdate(this.ydoc, fromBase64(data.update), REMOTE);
      } else if (frame.event === "awareness" && typeof data.awareness === "string") {
        applyAwarenessUpdate(this.awareness, fromBase64(data.awareness), REMOTE);
      }
    } catch (error) {
      // The server checked it with pycrdt before fanning it out; still, one bad event must
      // not stop the page.
      this.#emit("error", new CollabError("bad_event", `${frame.event}: ${error}`));
    }
  }

  // -- sending -----------------------------------------------------------------------------

  #scheduleFlush() {
    if (this.#flushTimer || this.#sending) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      this.#flush();
    }, FLUSH_DELAY);
  }

  async #flush() {
    if (this.#sending || this.#resyncing || this.#destroyed || this.#fatal || !this.#synced) return;
    if (!this.#queue.length) return;
    if (this.#hub.state !== "open") return; // the state listener flushes once it is
    let size = 0;
    let n = 0;
    while (n < this.#queue.length && (n === 0 || (!this.#oneByOne && size + this.#queue[n].length <= BATCH_BYTES))) {
      size += this.#queue[n].length;
      n += 1;
    }
    const batch = this.#queue.slice(0, n);
    const update = batch.length === 1 ? batch[0] : Y.mergeUpdates(batch);
    this.#sending = true;
    this.#updateStatus();
    let again = 0;
    try {
      await this.#hub.publish(this.#topic, "update", { update: toBase64(update), client: this.#clientId });
      this.#queue.splice(0, n); // only ever appended to meanwhile: these are the first n
      this.#repairing = false;
      if (this.#queue.length === 0) this.#oneByOne = false;
      this.#retryDelay = 500;
    } catch (error) {
      if (RESEND.has(error.code)) {
        // Kept in the queue; sent again once the hub is open (or shortly, if it still is).
        again = this.#retryDelay;
        this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX);
      } else if (error.code === "too_large" && n > 1) {
        this.#oneByOne = true; // the batch was: try its updates one at a time
      } else if (error.code === "bad_update" && !this.#repairing) {
        // The server lacks what this builds on (e.g. it lost recent updates): sync over
        // HTTP, which queues everything it lacks in place of this batch. Once: a second
        // refusal of that means the update itself is bad.
        this.#queue.splice(0, n);
        this.#repairing = true; // until the server acknowledges an update again
        this.#resync();
      } else {
        // Refused for good (forbidden, bad_update, a single too_large update, closed):
        // resending would be refused again, and later edits build on this one, so the
        // editor stops here (read-only, "error") rather than pretend to save.
        this.#fail(new CollabError(error.code || "refused", error.message));
      }
    } finally {
      this.#sending = false;
    }
    this.#updateStatus();
    if (!this.#queue.length || this.#destroyed) return;
    if (again) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#flush(), again);
    } else {
      this.#flush();
    }
  }

  #scheduleAwareness() {
    if (this.#awarenessTimer || this.#awarenessOff) return;
    this.#awarenessTimer = setTimeout(() => {
      this.#awarenessTimer = null;
      this.#publishAwareness();
    }, AWARENESS_DELAY);
  }

  #publishAwareness() {
    if (this.#destroyed || this.#awarenessOff || !this.#synced || this.#hub.state !== "open") return;
    const update = encodeAwarenessUpdate(this.awareness, [this.ydoc.clientID]);
    const data = { awareness: toBase64(update), client: this.#clientId };
    this.#hub.publish(this.#topic, "awareness", data).catch((error) => {
      // Ephemeral: a lost one is replaced by the next. Refused ones stop for this page.
      if (error.code === "forbidden" || error.code === "not_allowed") this.#awarenessOff = true;
    });
  }

  #leave() {
    if (this.#destroyed || !this.#synced) return;
    // Others drop our cursor now instead of after the 30 s awareness timeout.
    removeAwarenessStates(this.awareness, [this.ydoc.clientID], "leave");
    clearTimeout(this.#awarenessTimer);
    this.#awarenessTimer = null;
    this.#publishAwareness();
  }

  // -- status ------------------------------------------------------------------------------

  /** Refused for good: read-only from now on, status "error"; a reload starts afresh. */
  #fail(error) {
    if (this.#fatal || this.#destroyed) return;
    this.#fatal = error;
    this.#readOnly = true;
    this.view.dispatch({ effects: this.#editable.reconfigure(this.#editableExtensions(false)) });
    this.#emit("error", error);
    this.#updateStatus();
  }

  #updateStatus() {
    let status;
    const state = this.#hub.state;
    if (this.#fatal) status = Status.ERROR;
    else if (state === "offline" || state === "reconnecting" || state === "closed") status = Status.OFFLINE;
    else if (!this.#synced || this.#queue.length || this.#sending || this.#resyncing || state !== "open") {
      status = Status.SYNCING;
    }
    else status = Status.SAVED;
    if (status === this.#status) return;
    this.#status = status;
    this.#emit("status", status);
  }

  #emit(name, value) {
    for (const fn of this.#listeners.get(name) ?? []) {
      try {
        fn(value);
      } catch (error) {
        console.error(error); // a listener's bug must not break syncing
      }
    }
  }
}
