// taskstream browser client: protocol v1 (docs/protocol.md) over one multiplexed WebSocket.
//
// An ES module with no dependencies and no build step:
//
//   import { Hub } from "/static/taskstream/client.js";
//   const hub = new Hub();                       // same origin, ws:// or wss:// like the page
//   const sub = hub.subscribe("user:1", {
//     onEvent(frame) { ... },                    // {type, topic, cursor?, event, data, ts}
//     onGap(frame) { return refetchState(); },   // events were lost: reload over HTTP
//   });
//   hub.on("state", (state, detail) => ...);     // connecting | open | reconnecting | offline | closed
//   await hub.publish("room:lobby", "message", { body: "hi" });
//   sub.close(); hub.close();
//
// What it does for the caller: reconnects with exponential backoff and full jitter,
// resubscribes every topic from the last cursor it delivered (so nothing published
// while offline is lost), never delivers an event twice, pings every heartbeat and
// treats a silent connection as dead, follows the browser's online/offline events, and
// paces its own frames under the server's rate limit.
//
// One socket per browser: every `new Hub()` of every tab of this origin shares one
// WebSocket held by a SharedWorker (hub-worker.js). Where there is no SharedWorker, every
// Hub of a page shares one socket. A `Connection` owns the socket and the per-topic
// stream; a `Hub` is one caller's view of it (its handlers, its resume point, its gaps).

export const States = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  RECONNECTING: "reconnecting",
  OFFLINE: "offline",
  CLOSED: "closed",
});

// Close codes the server uses (docs/protocol.md, "Close codes").
export const CloseCodes = Object.freeze({
  TOO_LARGE: 1009,
  SERVICE_RESTART: 1012,
  UNAUTHENTICATED: 4401,
  SLOW_CONSUMER: 4408,
  RATE_LIMITED: 4429,
  TOO_MANY_CONNECTIONS: 4430,
  TOO_MANY_ANONYMOUS: 4431,
});

// Codes the server uses for "try again shortly".
const TRANSIENT_ERRORS = new Set(["rate_limited", "unavailable"]);

// A consumer joining a shared topic with a `since` this connection has not seen waits this
// long for that cursor to pass (a replay or a live event in flight), then gets a gap.
const CATCH_UP_GRACE = 3_000;

// After a `forbidden` answer to a caller newer than the socket, the socket is reopened once
// (the session cookie may have changed since, e.g. a sign-in in another tab); not more
// often than this.
const IDENTITY_REFRESH_EVERY = 10_000;

// Tabs tell each other on this channel when they give a socket back, so one refused by
// the per-user connection cap (4430) retries at once instead of waiting out its backoff.
const RELEASE_CHANNEL = "taskstream-hub";

const DEFAULTS = {
  url: null,
  token: null,
  // "auto": one socket per browser (SharedWorker) where possible, else one per page;
  // "page": one per page; false: this Hub's own socket.
  shared: "auto",
  // Reconnect delays in ms: full jitter over min(cap, base * 2^attempt). `hardCap` is
  // the ceiling after authentication failures, 4429, and long runs of failed handshakes.
  backoff: { base: 500, cap: 10_000, hardCap: 60_000 },
  // A server process that drains (deploy, SIGTERM) closes with 1012 after it stopped
  // accepting: come back at once, anywhere in this many ms (the others share the load).
  restartJitter: 2_000,
  // A connection open this long resets the backoff.
  stableAfter: 5_000,
  // Handshakes (socket open + welcome + auth) that take longer are abandoned.
  connectTimeout: 10_000,
  // Publish acks that take longer reject with code "timeout".
  requestTimeout: 10_000,
  // Outbound pacing, kept below the server's default RATE_PER_SECOND=20 / RATE_BURST=60.
  rate: { perSecond: 15, burst: 40 },
  // How many delivered cursors per topic are remembered to drop duplicates (and kept
  // so that a late subscriber of a shared topic can catch up from its own cursor).
  dedupeWindow: 1000,
  // Failed handshakes in a row (no welcome) before the backoff uses `hardCap`: a
  // browser cannot tell a refused handshake (403) from a server that is down.
  hardAfterFailures: 8,
  WebSocket: globalThis.WebSocket,
};

// Options that shape a connection: Hubs share one only when these agree.
const CONNECTION_OPTIONS = ["backoff", "restartJitter", "stableAfter", "connectTimeout",
                            "requestTimeout", "rate", "dedupeWindow", "hardAfterFailures"];

/** An error answered by the server (`code` from the protocol) or by this client. */
export class HubError extends Error {
  constructor(code, message, frame = null) {
    super(message);
    this.name = "HubError";
    this.code = code;
    this.frame = frame;
  }
}

function report(error) {
  // A throwing callback must not break delivery to the others.
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}

function defaultUrl() {
  const loc = globalThis.location;
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws/`;
}

function absoluteUrl(url) {
  if (!url) return defaultUrl();
  if (/^wss?:\/\//i.test(url)) return url;
  const resolved = new URL(url, globalThis.location.href);
  resolved.protocol = resolved.protocol === "https:" ? "wss:" : "ws:";
  return resolved.href;
}

function normalizeOptions(options) {
  return {
    ...DEFAULTS,
    ...options,
    backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) },
    rate: { ...DEFAULTS.rate, ...(options.rate || {}) },
  };
}

/** Read a cookie (e.g. Django's `csrftoken`). */
export function getCookie(name) {
  for (const part of (globalThis.document?.cookie || "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/**
 * A `token` option for `new Hub({ token })` that asks `POST /api/ws-token/` for a
 * short-lived token (session + CSRF), for deployments where the socket cannot carry
 * the session cookie. Returns null when the user is signed out (401/403).
 */
export function apiToken({ url = "/api/ws-token/", csrfToken = null, fetchOptions = {} } = {}) {
  return async () => {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken ?? getCookie("csrftoken") ?? "" },
      ...fetchOptions,
    });
    if (response.status === 401 || response.status === 403) return null;
    if (!response.ok) throw new HubError("token_failed", `ws-token answered ${response.status}`);
    return (await response.json()).token;
  };
}

// == Connection: one socket, shared by sinks =============================================
//
// A sink is one Hub's end: {send(message, defer), wantsFrames, pageStart?} (pageStart: when
// the sink's page was loaded, for tabs sharing a SharedWorker's socket). Messages are
// plain objects (they cross a MessagePort when the connection lives in a SharedWorker):
//   {op: "state", state, detail} {op: "welcome", frame} {op: "error", frame, local?}
//   {op: "frame", frame} {op: "topic", key, kind: subscribed|event|gap|error, frame}
//   {op: "published", rid, topic, cursor} | {op: "published", rid, error: {code, message, frame}}
// A sink holds consumers, one per topic it reads (`key`). Per topic the connection keeps
// ONE stream position (the server holds one subscription per topic per socket) and the
// recent events; each consumer starts at its own cursor and gets every later event once,
// in order: from the recent events when it has been seen, else once it passes on the wire.

export class Connection {
  #opts;
  #url;
  #ws = null;
  #state = States.CONNECTING;
  #detail = {};
  #ready = false; // welcome (and auth, if any) done on the current socket
  #authId = null;
  #closed = false;
  #sinks = new Set();
  #topics = new Map(); // topic -> TopicState
  #requests = new Map(); // request id -> { kind, topic?, sink?, rid?, frame?, timer?, sent? }
  #outbox = []; // publishes waiting for an open connection
  #nextId = 1;
  #attempt = 0;
  #failedHandshakes = 0;
  #welcome = null;
  #heartbeat = 0;
  #lastReceived = 0;
  #lastPing = 0;
  #openedAt = 0; // when the current socket was opened (identity refresh)
  #lastRefresh = 0;
  #offline = false;
  #refused = false; // the last socket was refused by the per-user cap
  #timers = { retry: null, connect: null, stable: null, beat: null, flush: null };
  #queue = []; // outbound frames, paced by a token bucket
  #tokens;
  #refilled;
  #channel = null;
  #onClosed;
  #onOnline = () => this.network(true);
  #onOffline = () => this.network(false);
  #onPageHide = () => {
    if (this.#ready) this.#channel?.postMessage({ type: "released", url: this.#url });
  };

  /** `options` as for Hub; `onClosed` runs once the connection is closed for good. */
  constructor(options = {}, { onClosed = null } = {}) {
    this.#opts = normalizeOptions(options);
    if (typeof this.#opts.WebSocket !== "function") {
      throw new TypeError("taskstream Hub needs a WebSocket implementation");
    }
    this.#url = absoluteUrl(this.#opts.url);
    this.#onClosed = onClosed;
    this.#tokens = this.#opts.rate.burst;
    this.#refilled = Date.now();
    globalThis.addEventListener?.("online", this.#onOnline);
    globalThis.addEventListener?.("offline", this.#onOffline);
    globalThis.addEventListener?.("pagehide", this.#onPageHide);
    if (typeof globalThis.BroadcastChannel === "function") {
      this.#channel = new BroadcastChannel(RELEASE_CHANNEL);
      this.#channel.onmessage = (message) => this.#onReleased(message.data);
    }
    if (globalThis.navigator?.onLine === false) {
      this.#offline = true;
      this.#setState(States.OFFLINE, {});
    } else {
      this.#connect();
    }
  }

  get closed() {
    return this.#closed;
  }

  addSink(sink) {
    if (this.#closed) throw new HubError("closed", "this connection was closed");
    sink.consumers = new Map();
    this.#sinks.add(sink);
    // Deferred: the Hub being built has no listeners yet.
    if (this.#welcome) this.#to(sink, { op: "welcome", frame: this.#welcome }, true);
    this.#to(sink, { op: "state", state: this.#state, detail: this.#detail }, true);
  }

  /** Forget a sink (its Hub closed, its tab went away); the last one closes the socket. */
  removeSink(sink) {
    if (!this.#sinks.delete(sink)) return;
    for (const key of [...(sink.consumers?.keys() || [])]) this.detach(sink, key);
    for (const [id, request] of this.#requests) {
      if (request.sink !== sink) continue;
      clearTimeout(request.timer);
      this.#requests.delete(id);
    }
    this.#outbox = this.#outbox.filter((request) => request.sink !== sink);
    if (!this.#sinks.size) this.close();
  }

  /** Start (or, for a key the sink holds, re-aim) the sink's consumer of `topic`. */
  attach(sink, key, topic, since = null) {
    if (this.#closed || !this.#sinks.has(sink)) return;
    const existing = sink.consumers.get(key);
    if (existing) {
      const state = existing.state;
      if (since && since !== state.cursor) {
        if (state.cursor === null && state.reqId === null && !state.subscribed) this.#adopt(state, since);
        else console.warn(`taskstream: ${topic} is already subscribed on this hub; the new ` +
                          "subscription's `since` is ignored (use another Hub to replay)");
      }
      return;
    }
    const consumer = { sink, key, state: null, waiting: null, timer: null };
    sink.consumers.set(key, consumer);
    let state = this.#topics.get(topic);
    if (!state) {
      state = {
        topic,
        consumers: new Set(),
        cursor: null,
        seen: new Set(),
        recent: [], // [{cursor, frame: event | gap | null (a position)}], oldest first
        subscribed: false,
        reqId: null,
        sentSince: null,
        lastSubscribed: null,
        retries: 0,
        retryTimer: null,
      };
      this.#topics.set(topic, state);
      consumer.state = state;
      state.consumers.add(consumer);
      if (since) this.#adopt(state, since);
      if (this.#ready) this.#sendSubscribe(state);
      return;
    }
    consumer.state = state;
    state.consumers.add(consumer);
    if (state.subscribed && state.lastSubscribed) {
      this.#to(sink, { op: "topic", key, kind: "subscribed", frame: state.lastSubscribed }, true);
    }
    if (!since || since === state.cursor) return; // from now on
    if (state.cursor === null && state.reqId === null && !state.subscribed) {
      this.#adopt(state, since); // not asked for yet: the first resume point wins
      return;
    }
    let at = -1;
    for (let i = state.recent.length - 1; i >= 0; i--) {
      if (state.recent[i].cursor === since) {
        at = i;
        break;
      }
    }
    if (at >= 0) {
      for (const { frame } of state.recent.slice(at + 1)) {
        if (frame) this.#to(sink, { op: "topic", key, kind: frame.type, frame }, true);
      }
      return;
    }
    // Not seen here (yet): a replay in progress or an event in flight brings it, else a gap.
    consumer.waiting = since;
    if (state.subscribed) this.#startCatchUp(consumer);
  }

  detach(sink, key) {
    const consumer = sink.consumers?.get(key);
    if (!consumer) return;
    sink.consumers.delete(key);
    clearTimeout(consumer.timer);
    const state = consumer.state;
    if (!state.consumers.delete(consumer) || state.consumers.size) return;
    this.#topics.delete(state.topic);
    clearTimeout(state.retryTimer);
    if (this.#ready) {
      const id = this.#id();
      this.#requests.set(id, { kind: "unsubscribe", topic: state.topic });
      this.#send({ type: "unsubscribe", topic: state.topic, id });
    }
  }

  publish(sink, rid, topic, event, data, timeout = this.#opts.requestTimeout) {
    if (this.#closed) {
      this.#to(sink, { op: "published", rid, error: { code: "closed", message: "this hub was closed" } });
      return;
    }
    const id = this.#id();
    const request = { kind: "publish", topic, sink, rid, timer: null, sent: false };
    request.frame = { type: "publish", topic, event, data, id };
    request.timer = setTimeout(() => {
      this.#requests.delete(id);
      this.#outbox = this.#outbox.filter((r) => r !== request);
      this.#answer(request, { code: "timeout", message: `no answer to publish on ${topic} within ${timeout} ms` });
    }, timeout);
    this.#requests.set(id, request);
    if (this.#ready) this.#sendRequest(request);
    else this.#outbox.push(request);
  }

  /** Reconnect now (a "reconnect now" button, a sign-in), skipping any backoff wait. */
  reconnect() {
    if (this.#closed) return;
    this.#offline = false; // the user asked: try, whatever navigator.onLine says
    if (this.#ws && this.#ready) return;
    this.#attempt = 0;
    this.#failedHandshakes = 0;
    if (this.#ws) this.#drop({ code: 0, reason: "reconnect" }, false);
    this.#connect();
  }

  /**
   * A page joined (a SharedWorker's new tab): if this connection is waiting out a backoff,
   * try now. The page may come with a new session (signed in again after a 4401), and
   * must not wait a minute for what a reload would get at once.
   */
  wake() {
    if (this.#closed || this.#offline || this.#ws) return;
    this.#attempt = 0;
    this.#failedHandshakes = 0;
    this.#connect();
  }

  /** The browser went offline (false) or online (true). */
  network(online) {
    if (this.#closed) return;
    if (!online) {
      if (this.#offline) return;
      // Nothing can arrive: say so instead of showing a frozen "open".
      this.#offline = true;
      clearTimeout(this.#timers.retry);
      this.#timers.retry = null;
      if (this.#ws) this.#drop({ code: 0, reason: "offline" }, false);
      this.#setState(States.OFFLINE, {});
      return;
    }
    if (!this.#offline && this.#ws) {
      // Open: a network change may have killed it silently. Opening: let it finish (every
      // tab of a SharedWorker reports the same "online").
      if (this.#ready) this.check();
      return;
    }
    this.reconnect();
  }

  /** Ping now, and drop the socket if it has been silent too long (a tab became visible). */
  check() {
    this.#checkAlive();
  }

  /** Close the socket for good and cancel everything pending. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    globalThis.removeEventListener?.("online", this.#onOnline);
    globalThis.removeEventListener?.("offline", this.#onOffline);
    globalThis.removeEventListener?.("pagehide", this.#onPageHide);
    const ws = this.#ws;
    const wasReady = this.#ready;
    this.#teardown(new HubError("closed", "this hub was closed"));
    clearTimeout(this.#timers.retry);
    for (const request of this.#outbox) {
      clearTimeout(request.timer);
      this.#answer(request, { code: "closed", message: "this hub was closed" });
    }
    this.#outbox = [];
    for (const state of this.#topics.values()) {
      clearTimeout(state.retryTimer);
      for (const consumer of state.consumers) clearTimeout(consumer.timer);
    }
    this.#topics.clear();
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    if (wasReady) this.#channel?.postMessage({ type: "released", url: this.#url });
    this.#channel?.close();
    this.#setState(States.CLOSED, {});
    this.#onClosed?.(this);
  }

  // -- to the sinks ---------------------------------------------------------------------

  #to(sink, message, defer = false) {
    try {
      sink.send(message, defer);
    } catch (error) {
      report(error);
    }
  }

  #broadcast(message) {
    for (const sink of this.#sinks) this.#to(sink, message);
  }

  #toConsumers(state, kind, frame) {
    for (const consumer of state.consumers) {
      this.#to(consumer.sink, { op: "topic", key: consumer.key, kind, frame });
    }
  }

  #answer(request, error, frame = null) {
    const message = error
      ? { op: "published", rid: request.rid, error: { ...error, frame } }
      : { op: "published", rid: request.rid, topic: frame.topic, cursor: frame.cursor };
    this.#to(request.sink, message);
  }

  // -- per-topic stream -----------------------------------------------------------------

  #adopt(state, since) {
    state.cursor = since;
    state.recent.push({ cursor: since, frame: null });
  }

  #remember(state, cursor, frame) {
    const recent = state.recent;
    if (!frame && recent.length && recent[recent.length - 1].cursor === cursor) return;
    recent.push({ cursor, frame });
    if (recent.length > this.#opts.dedupeWindow) recent.shift();
  }

  #startCatchUp(consumer) {
    if (consumer.timer || !consumer.waiting) return;
    consumer.timer = setTimeout(() => {
      consumer.timer = null;
      if (!consumer.waiting || !this.#ready) return;
      // Its cursor is older than anything this connection still holds: the caller
      // refetches its state, as after any gap, and continues from here.
      consumer.waiting = null;
      const state = consumer.state;
      const gap = { type: "gap", topic: state.topic, cursor: state.cursor };
      this.#to(consumer.sink, { op: "topic", key: consumer.key, kind: "gap", frame: gap });
    }, CATCH_UP_GRACE);
  }

  // -- connection lifecycle -------------------------------------------------------------

  #connect() {
    clearTimeout(this.#timers.retry);
    this.#timers.retry = null;
    if (this.#closed || this.#offline) return;
    let ws;
    try {
      ws = new this.#opts.WebSocket(this.#url);
    } catch (error) {
      this.#lost({ code: 0, reason: String(error) });
      return;
    }
    this.#ws = ws;
    this.#ready = false;
    this.#authId = null;
    this.#openedAt = Date.now();
    this.#lastReceived = Date.now();
    this.#timers.connect = setTimeout(
      () => this.#drop({ code: 0, reason: "handshake timeout" }),
      this.#opts.connectTimeout,
    );
    ws.onmessage = (message) => {
      if (this.#ws === ws) this.#onMessage(message.data);
    };
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#lost({ code: event.code, reason: event.reason || "" });
    };
    ws.onerror = () => {}; // a close event with the code follows
  }

  // Forget the socket without waiting for its closing handshake (a dead peer never answers).
  #drop(detail, retry = true) {
    const ws = this.#ws;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000);
    } catch {
      // already closed
    }
    if (retry) this.#lost(detail);
    else this.#teardown(new HubError("disconnected", "the connection was replaced"));
  }

  #teardown(error) {
    const wasReady = this.#ready;
    this.#ws = null;
    this.#ready = false;
    this.#authId = null;
    for (const key of ["connect", "stable", "beat", "flush"]) {
      clearTimeout(this.#timers[key]);
      clearInterval(this.#timers[key]);
      this.#timers[key] = null;
    }
    this.#queue = [];
    for (const [id, request] of this.#requests) {
      if (request.kind === "publish" && !request.sent) continue;
      this.#requests.delete(id);
      if (request.kind !== "publish") continue;
      clearTimeout(request.timer);
      this.#answer(request, { code: error.code, message: error.message });
    }
    for (const state of this.#topics.values()) {
      state.subscribed = false;
      state.reqId = null;
      clearTimeout(state.retryTimer);
      state.retryTimer = null;
      for (const consumer of state.consumers) {
        clearTimeout(consumer.timer); // restarted once the topic is subscribed again
        consumer.timer = null;
      }
    }
    return wasReady;
  }

  #lost({ code, reason }) {
    const wasReady = this.#teardown(
      new HubError("disconnected", "the connection dropped before the server answered"),
    );
    if (this.#closed) return;
    if (this.#offline) {
      this.#setState(States.OFFLINE, {});
      return;
    }
    this.#failedHandshakes = wasReady ? 0 : this.#failedHandshakes + 1;
    const { base, cap, hardCap } = this.#opts.backoff;
    // A cap on open sockets (per user, or anonymous ones): it frees up as others close.
    this.#refused = code === CloseCodes.TOO_MANY_CONNECTIONS || code === CloseCodes.TOO_MANY_ANONYMOUS;
    const hard =
      code === CloseCodes.UNAUTHENTICATED ||
      code === CloseCodes.RATE_LIMITED ||
      reason === "unauthenticated";
    if (code === CloseCodes.SERVICE_RESTART && wasReady) {
      // Not a failure: the process is draining and the others take new sockets now.
      // Full jitter over a short window spreads its sockets over them; no backoff step.
      const delay = Math.random() * this.#opts.restartJitter;
      this.#setState(States.RECONNECTING, { attempt: this.#attempt, delay, code, reason });
      this.#timers.retry = setTimeout(() => this.#connect(), delay);
      return;
    }
    let delay;
    if (this.#refused) {
      // Over the per-user socket cap (other tabs, other devices): a freed socket in this
      // browser wakes us at once (#onReleased); otherwise look again now and then.
      delay = 2_000 + Math.random() * Math.min(hardCap / 2, base * 2 ** this.#attempt);
      reason ||= code === CloseCodes.TOO_MANY_CONNECTIONS ? "too many connections" : "server busy";
    } else if (hard) {
      // Asking again soon will not help: wait long, and say why in the state detail.
      delay = hardCap / 2 + (Math.random() * hardCap) / 2;
    } else {
      const ceiling = this.#failedHandshakes >= this.#opts.hardAfterFailures ? hardCap : cap;
      delay = Math.random() * Math.min(ceiling, base * 2 ** this.#attempt);
    }
    this.#attempt = Math.min(this.#attempt + 1, 30);
    this.#setState(States.RECONNECTING, { attempt: this.#attempt, delay, code, reason });
    this.#timers.retry = setTimeout(() => this.#connect(), delay);
  }

  #onReleased(message) {
    if (message?.type !== "released" || message.url !== this.#url) return;
    if (!this.#refused || this.#ws || this.#closed || this.#offline) return;
    // Another tab gave its socket back; the server may take a moment to count it.
    clearTimeout(this.#timers.retry);
    this.#timers.retry = setTimeout(() => this.#connect(), 250 + Math.random() * 1_250);
  }

  #becomeReady() {
    clearTimeout(this.#timers.connect);
    this.#ready = true;
    this.#refused = false;
    this.#failedHandshakes = 0;
    this.#timers.stable = setTimeout(() => {
      this.#attempt = 0;
    }, this.#opts.stableAfter);
    this.#startHeartbeat();
    this.#setState(States.OPEN, { user: this.#welcome?.user });
    for (const state of this.#topics.values()) this.#sendSubscribe(state);
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const request of waiting) this.#sendRequest(request);
  }

  #setState(state, detail) {
    if (this.#state === state && state !== States.RECONNECTING) return;
    this.#state = state;
    this.#detail = detail;
    this.#broadcast({ op: "state", state, detail });
  }

  // -- heartbeats -------------------------------------------------------------------------

  #startHeartbeat() {
    clearInterval(this.#timers.beat);
    if (!(this.#heartbeat > 0)) return;
    this.#lastPing = 0;
    this.#timers.beat = setInterval(() => this.#checkAlive(), this.#heartbeat);
  }

  // Ping, and call the connection dead when a ping has gone unanswered for a heartbeat
  // and nothing at all arrived for two. Judged from our own last ping rather than wall
  // time alone, so a background tab whose timers were throttled is not torn down.
  #checkAlive() {
    if (!this.#ready || !(this.#heartbeat > 0)) return;
    const now = Date.now();
    const unanswered = this.#lastPing > this.#lastReceived;
    // 0.9: timers may fire a little early.
    const beat = 0.9 * this.#heartbeat;
    if (unanswered && now - this.#lastPing >= beat && now - this.#lastReceived >= 1.5 * beat) {
      this.#drop({ code: 0, reason: "heartbeat timeout" });
      return;
    }
    if (!unanswered || now - this.#lastPing >= beat) {
      this.#lastPing = now;
      this.#send({ type: "ping" });
    }
  }

  // -- outbound ---------------------------------------------------------------------------

  #id() {
    return this.#nextId++;
  }

  #send(frame) {
    this.#queue.push(JSON.stringify(frame));
    this.#flush();
  }

  #flush() {
    const ws = this.#ws;
    if (!ws) return;
    const { perSecond, burst } = this.#opts.rate;
    const now = Date.now();
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilled) / 1000) * perSecond);
    this.#refilled = now;
    while (this.#queue.length && this.#tokens >= 1) {
      this.#tokens -= 1;
      try {
        ws.send(this.#queue.shift());
      } catch {
        return; // the close event follows
      }
    }
    if (this.#queue.length && !this.#timers.flush) {
      const wait = Math.ceil(((1 - this.#tokens) / perSecond) * 1000);
      this.#timers.flush = setTimeout(() => {
        this.#timers.flush = null;
        this.#flush();
      }, wait);
    }
  }

  #sendRequest(request) {
    request.sent = true;
    this.#send(request.frame);
  }

  #sendSubscribe(state) {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    const id = this.#id();
    state.reqId = id;
    state.subscribed = false;
    state.sentSince = state.cursor;
    const frame = { type: "subscribe", topic: state.topic, id };
    if (state.cursor) frame.since = state.cursor;
    this.#requests.set(id, { kind: "subscribe", topic: state.topic });
    this.#send(frame);
  }

  // -- inbound ----------------------------------------------------------------------------

  #onMessage(raw) {
    this.#lastReceived = Date.now();
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      this.#broadcast({ op: "error", local: true,
                        frame: { code: "bad_frame", message: "the server sent invalid JSON" } });
      return;
    }
    if (!frame || typeof frame !== "object") return;
    for (const sink of this.#sinks) {
      if (sink.wantsFrames && (typeof frame.topic !== "string" || sink.consumers.has(frame.topic))) {
        this.#to(sink, { op: "frame", frame });
      }
    }
    switch (frame.type) {
      case "welcome":
        this.#onWelcome(frame);
        break;
      case "subscribed":
        this.#onSubscribed(frame);
        break;
      case "event":
        this.#onEvent(frame);
        break;
      case "gap":
        this.#onGap(frame);
        break;
      case "published":
        this.#settle(frame, null);
        break;
      case "unsubscribed":
        this.#requests.delete(frame.id);
        break;
      case "error":
        this.#onError(frame);
        break;
      default:
        break; // pong, and frame types of later protocol versions
    }
  }

  #onWelcome(frame) {
    this.#welcome = frame;
    this.#heartbeat = Number(frame.heartbeat) * 1000 || 0;
    this.#broadcast({ op: "welcome", frame });
    if (this.#ready) return; // a repeated welcome (after auth on an open socket)
    if (this.#authId !== null) {
      this.#authId = null;
      this.#becomeReady();
      return;
    }
    if (!this.#opts.token) {
      this.#becomeReady();
      return;
    }
    const ws = this.#ws;
    Promise.resolve()
      .then(() => this.#opts.token())
      .then(
        (token) => {
          if (this.#ws !== ws) return;
          if (!token) {
            this.#becomeReady(); // signed out: carry on anonymously
            return;
          }
          this.#authId = this.#id();
          // The handshake must not wait behind paced frames: auth goes first.
          this.#queue.unshift(JSON.stringify({ type: "auth", token, id: this.#authId }));
          this.#flush();
        },
        (error) => {
          if (this.#ws !== ws) return;
          this.#broadcast({ op: "error", local: true,
                            frame: { code: error?.code || "token_failed", message: String(error?.message || error) } });
          this.#drop({ code: 0, reason: "unauthenticated" });
        },
      );
  }

  #onSubscribed(frame) {
    this.#requests.delete(frame.id);
    const state = this.#topics.get(frame.topic);
    if (!state || state.reqId !== frame.id) return; // an answer to a superseded request
    state.subscribed = true;
    state.retries = 0;
    state.lastSubscribed = frame;
    // Without `since` nothing is replayed: the next resume starts from this cursor, so
    // events published while a fresh subscriber is offline are not lost either.
    if (!state.sentSince) {
      state.cursor = frame.cursor;
      this.#remember(state, frame.cursor, null);
      for (const consumer of state.consumers) {
        if (consumer.waiting === frame.cursor) consumer.waiting = null;
      }
    }
    this.#toConsumers(state, "subscribed", frame);
    for (const consumer of state.consumers) this.#startCatchUp(consumer);
  }

  #onEvent(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    const cursor = frame.cursor;
    if (typeof cursor !== "string") {
      // Ephemeral: at most once, to whoever is live now.
      for (const consumer of state.consumers) {
        if (!consumer.waiting) this.#to(consumer.sink, { op: "topic", key: consumer.key, kind: "event", frame });
      }
      return;
    }
    if (state.seen.has(cursor)) return; // delivered before: never twice
    state.seen.add(cursor);
    if (state.seen.size > this.#opts.dedupeWindow) state.seen.delete(state.seen.values().next().value);
    state.cursor = cursor;
    this.#remember(state, cursor, frame);
    for (const consumer of state.consumers) {
      if (consumer.waiting) {
        // Still before this consumer's own starting point: it has this one already.
        if (consumer.waiting === cursor) {
          consumer.waiting = null;
          clearTimeout(consumer.timer);
          consumer.timer = null;
        }
        continue;
      }
      this.#to(consumer.sink, { op: "topic", key: consumer.key, kind: "event", frame });
    }
  }

  #onGap(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    state.cursor = frame.cursor;
    this.#remember(state, frame.cursor, frame);
    for (const consumer of state.consumers) {
      consumer.waiting = null;
      clearTimeout(consumer.timer);
      consumer.timer = null;
    }
    this.#toConsumers(state, "gap", frame);
  }

  #onError(frame) {
    const request = frame.id != null ? this.#requests.get(frame.id) : undefined;
    if (frame.id != null && frame.id === this.#authId) {
      this.#broadcast({ op: "error", frame });
      this.#drop({ code: 0, reason: "unauthenticated" });
      return;
    }
    if (!request) {
      const revoked = frame.code === "forbidden" && typeof frame.topic === "string"
        ? this.#topics.get(frame.topic) : undefined;
      if (revoked) {
        // The server took access back and ended this subscription (docs/protocol.md,
        // "When access is taken back"): its callers hear it as they would a refusal.
        revoked.reqId = null;
        this.#toConsumers(revoked, "error", frame);
        return;
      }
      this.#broadcast({ op: "error", frame });
      return;
    }
    if (request.kind === "publish") {
      this.#settle(frame, frame);
      return;
    }
    this.#requests.delete(frame.id);
    if (request.kind !== "subscribe") return;
    const state = this.#topics.get(request.topic);
    if (!state || state.reqId !== frame.id) return;
    state.reqId = null;
    if (frame.code === "bad_frame" && state.sentSince) {
      // The server does not know our cursor (e.g. from another deployment): start over
      // from now and tell the callers, as for any other gap.
      state.cursor = null;
      state.seen.clear();
      state.recent = [];
      for (const consumer of state.consumers) consumer.waiting = null;
      this.#toConsumers(state, "gap", { type: "gap", topic: state.topic, cursor: null });
      this.#sendSubscribe(state);
      return;
    }
    if (TRANSIENT_ERRORS.has(frame.code)) {
      const { base, cap } = this.#opts.backoff;
      const delay = 1000 + Math.random() * Math.min(cap, base * 2 ** state.retries);
      state.retries = Math.min(state.retries + 1, 30);
      state.retryTimer = setTimeout(() => {
        state.retryTimer = null;
        if (this.#ready && this.#topics.get(state.topic) === state) this.#sendSubscribe(state);
      }, delay);
      return;
    }
    if (frame.code === "forbidden" && this.#mayRefreshIdentity(state)) {
      // A caller that arrived after this socket opened may belong to a newer session
      // (signed in in another tab): open a socket with the current cookie and ask again.
      this.#lastRefresh = Date.now();
      this.#drop({ code: 0, reason: "identity refresh" }, false);
      this.#connect();
      return;
    }
    // forbidden, unknown_topic, not_allowed: asked again only on the next connection.
    this.#toConsumers(state, "error", frame);
  }

  #mayRefreshIdentity(state) {
    if (Date.now() - this.#lastRefresh < IDENTITY_REFRESH_EVERY) return false;
    // Only a page loaded after this socket opened can hold a newer session than it.
    for (const consumer of state.consumers) {
      if ((consumer.sink.pageStart || 0) > this.#openedAt) return true;
    }
    return false;
  }

  #settle(frame, errorFrame) {
    const request = this.#requests.get(frame.id);
    if (!request || request.kind !== "publish") return;
    this.#requests.delete(frame.id);
    clearTimeout(request.timer);
    if (errorFrame) this.#answer(request, { code: errorFrame.code, message: errorFrame.message }, errorFrame);
    else this.#answer(request, null, frame);
  }
}

// == Links: how a Hub reaches its Connection =============================================

// Connections shared by the Hubs of this page, by URL and connection options.
const pageConnections = new Map();

function pageConnection(opts) {
  const key = JSON.stringify([absoluteUrl(opts.url), ...CONNECTION_OPTIONS.map((name) => opts[name])]);
  let connection = pageConnections.get(key);
  if (!connection || connection.closed) {
    connection = new Connection(opts, { onClosed: () => pageConnections.delete(key) });
    pageConnections.set(key, connection);
  }
  return connection;
}

// A Connection in this page (shared or the Hub's own). Messages raised while the Hub
// calls in (a late subscriber's catch-up, the first state) wait for a microtask, so
// handlers never run inside subscribe() or the constructor; order is kept.
class LocalLink {
  #hub;
  #queue = [];
  #scheduled = false;
  constructor(hub, connection, owned) {
    this.#hub = hub;
    this.connection = connection;
    this.owned = owned;
    this.sink = { send: (message, defer) => this.#deliver(message, defer), wantsFrames: false };
    connection.addSink(this.sink);
  }

  #deliver(message, defer) {
    if (!defer && !this.#queue.length) {
      this.#hub._receive(message);
      return;
    }
    this.#queue.push(message);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      while (this.#queue.length) {
        const next = this.#queue[0];
        try {
          this.#hub._receive(next);
        } finally {
          this.#queue.shift();
        }
      }
      this.#scheduled = false;
    });
  }

  attach(key, topic, since) { this.connection.attach(this.sink, key, topic, since); }
  detach(key) { this.connection.detach(this.sink, key); }
  publish(rid, topic, event, data, timeout) { this.connection.publish(this.sink, rid, topic, event, data, timeout); }
  reconnect() { this.connection.reconnect(); }
  network() {} // the connection listens to this page's events itself
  check() { this.connection.check(); }
  frames(on) { this.sink.wantsFrames = on; }
  close() {
    if (this.owned) this.connection.close();
    else this.connection.removeSink(this.sink);
  }
}

// The browser's one Connection, in a SharedWorker (hub-worker.js), over a MessagePort.
// The worker learns that a tab is gone from a Web Lock the tab holds while it lives.
class WorkerLink {
  #hub;
  #port;
  #failTimer;
  #releaseLock = null;
  #failed = false;
  constructor(hub, opts, onFail) {
    this.#hub = hub;
    const url = absoluteUrl(opts.url);
    // The module's own URL in the name: a new deployment of client.js gets a new worker.
    const worker = new SharedWorker(new URL("./hub-worker.js", import.meta.url),
                                    { type: "module", name: `taskstream ${url} ${import.meta.url}` });
    this.#port = worker.port;
    const fail = (why) => {
      if (this.#failed) return;
      console.warn(`taskstream: the shared hub worker ${why}; this page opens its own socket`);
      this.close(); // says bye, so the worker forgets this tab even without Web Locks
      this.#failed = true;
      onFail();
    };
    worker.addEventListener("error", () => fail("failed to start"));
    // A safety net only (a failed script fires "error"): a worker starting slowly while
    // many tabs load at once must not be abandoned for sockets of their own.
    this.#failTimer = setTimeout(() => fail("did not answer"), 3 * opts.connectTimeout);
    this.#port.onmessage = (message) => {
      if (this.#failed) return;
      clearTimeout(this.#failTimer);
      this.#hub._receive(message.data);
    };
    this.#port.start();
    const lock = `taskstream-tab-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    const hello = () => this.#post({ op: "hello", lock, online: globalThis.navigator?.onLine !== false,
                                     pageStart: globalThis.performance?.timeOrigin || Date.now() });
    if (globalThis.navigator?.locks) {
      globalThis.navigator.locks.request(lock, () => {
        hello();
        return new Promise((resolve) => { this.#releaseLock = resolve; });
      }).catch(() => {});
    } else {
      hello();
    }
  }

  #post(message) {
    if (!this.#failed) this.#port.postMessage(message);
  }

  attach(key, topic, since) { this.#post({ op: "attach", key, topic, since }); }
  detach(key) { this.#post({ op: "detach", key }); }
  publish(rid, topic, event, data, timeout) { this.#post({ op: "publish", rid, topic, event, data, timeout }); }
  reconnect() { this.#post({ op: "reconnect" }); }
  network(online) { this.#post({ op: "network", online }); }
  check() { this.#post({ op: "check" }); }
  frames(on) { this.#post({ op: "frames", on }); }
  close() {
    clearTimeout(this.#failTimer);
    this.#post({ op: "bye" });
    this.#port.close();
    this.#releaseLock?.();
  }
}

function chooseMode(options, opts) {
  if (options.shared === false || options.WebSocket || opts.token) return "private";
  const custom = CONNECTION_OPTIONS.some((name) => name in options);
  if (options.shared === "page" || custom || typeof globalThis.SharedWorker !== "function" ||
      typeof globalThis.document === "undefined") return "page";
  return "worker";
}

// == Hub: one caller's view ==============================================================

/** One caller's interest in a topic; `close()` ends it. */
class Subscription {
  constructor(hub, topic, handlers) {
    this.topic = topic;
    this.closed = false;
    this._hub = hub;
    this._handlers = handlers;
  }

  /** The cursor of the last event delivered on this topic (resume point), or null. */
  get cursor() {
    return this._hub._cursorOf(this.topic);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this._hub._release(this);
  }
}

export class Hub {
  #opts;
  #mode;
  #link;
  #state = States.CONNECTING;
  #user = undefined;
  #closed = false;
  #listeners = new Map();
  #views = new Map(); // topic -> this Hub's view of it
  #pending = new Map(); // publish rid -> { resolve, reject }
  #nextRid = 1;
  #onNetwork = (event) => this.#link.network(event.type === "online");
  #onVisible = () => {
    if (globalThis.document?.visibilityState === "visible") this.#link.check();
  };
  #onPageHide = (event) => {
    // A page leaving for good gives its place back at once; one kept in the
    // back/forward cache comes back through pageshow.
    if (this.#mode === "worker" && !event.persisted) this.#link.close();
  };

  constructor(options = {}) {
    this.#opts = normalizeOptions(options);
    if (typeof this.#opts.WebSocket !== "function") {
      throw new TypeError("taskstream Hub needs a WebSocket implementation");
    }
    this.#mode = chooseMode(options, this.#opts);
    if (this.#mode === "worker") {
      try {
        this.#link = new WorkerLink(this, this.#opts, () => this.#fallBack());
      } catch {
        this.#mode = "page"; // e.g. a worker refused by the page's CSP
      }
    }
    if (!this.#link) {
      this.#link = this.#mode === "private"
        ? new LocalLink(this, new Connection(this.#opts), true)
        : new LocalLink(this, pageConnection(this.#opts), false);
    }
    globalThis.addEventListener?.("online", this.#onNetwork);
    globalThis.addEventListener?.("offline", this.#onNetwork);
    globalThis.addEventListener?.("pagehide", this.#onPageHide);
    globalThis.document?.addEventListener?.("visibilitychange", this.#onVisible);
  }

  /** connecting | open | reconnecting | offline | closed */
  get state() {
    return this.#state;
  }

  /** The user id from the last `welcome` (null: anonymous; undefined: not yet known). */
  get user() {
    return this.#user;
  }

  /** Where the socket lives: "worker" (one per browser), "page" or "private". */
  get sharing() {
    return this.#mode;
  }

  /**
   * Listen to hub-level events; returns a function that removes the listener.
   * "state" (state, detail), "welcome" (frame), "error" (frame or HubError: errors no
   * request owns), "frame" (every parsed server frame for this Hub's topics, and those
   * without a topic, for debugging).
   */
  on(name, fn) {
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(fn);
    if (name === "frame") this.#link.frames(true);
    return () => this.#listeners.get(name)?.delete(fn);
  }

  /**
   * Receive a topic's events. Handlers: onEvent(frame), onGap(frame) — may return a
   * promise; the topic's later events wait until it settles, so a refetch and the
   * events after it apply in order —, onSubscribed(frame), onError(frame).
   * `since`: a cursor to resume from (e.g. rendered with the page's initial state).
   * Subscribing a topic this hub already holds shares that subscription: the new
   * handlers get events from now on, and their `since` only counts while the topic has
   * no resume point and has not been sent yet (otherwise a console warning says so).
   */
  subscribe(topic, { since = null, onEvent, onGap, onSubscribed, onError } = {}) {
    if (this.#closed) throw new HubError("closed", "this hub was closed");
    if (typeof topic !== "string" || !topic) throw new TypeError("topic must be a non-empty string");
    const sub = new Subscription(this, topic, { onEvent, onGap, onSubscribed, onError });
    let view = this.#views.get(topic);
    if (view) {
      view.subs.add(sub);
      if (since && since !== view.cursor) {
        if (view.cursor === null && !view.subscribed) {
          view.since = since;
          view.cursor = since;
          this.#link.attach(topic, topic, since); // adopted if not sent yet, else a warning
        } else {
          console.warn(`taskstream: ${topic} is already subscribed on this hub; the new ` +
                       "subscription's `since` is ignored (use another Hub to replay)");
        }
      }
      if (view.subscribed && view.lastSubscribed) this.#call(sub, "onSubscribed", view.lastSubscribed);
      return sub;
    }
    view = {
      topic,
      subs: new Set([sub]),
      since,
      cursor: since,
      delivered: false,
      seen: new Set(),
      subscribed: false,
      lastSubscribed: null,
      hold: null,
      held: [],
    };
    this.#views.set(topic, view);
    this.#link.attach(topic, topic, since);
    return sub;
  }

  /**
   * Publish to a topic that accepts client events (rooms). Resolves with the
   * `published` ack ({topic, cursor}); rejects with a HubError carrying the server's
   * code, "timeout", "disconnected" (the socket dropped after sending: it may or may
   * not have been published), or "closed". Waits for the connection when offline.
   */
  publish(topic, event, data = {}, { timeout = this.#opts.requestTimeout } = {}) {
    if (this.#closed) return Promise.reject(new HubError("closed", "this hub was closed"));
    return new Promise((resolve, reject) => {
      const rid = this.#nextRid++;
      this.#pending.set(rid, { resolve, reject });
      this.#link.publish(rid, topic, event, data, timeout);
    });
  }

  /** Reconnect now (a "reconnect now" button, a sign-in), skipping any backoff wait. */
  reconnect() {
    if (!this.#closed) this.#link.reconnect();
  }

  /** Stop this Hub and cancel what it has pending; a shared socket stays for the others. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    globalThis.removeEventListener?.("online", this.#onNetwork);
    globalThis.removeEventListener?.("offline", this.#onNetwork);
    globalThis.removeEventListener?.("pagehide", this.#onPageHide);
    globalThis.document?.removeEventListener?.("visibilitychange", this.#onVisible);
    this.#rejectPending("closed", "this hub was closed");
    this.#views.clear();
    this.#link.close();
    this.#setState(States.CLOSED, {});
  }

  // -- internals used by Subscription and the links -------------------------------------

  _cursorOf(topic) {
    return this.#views.get(topic)?.cursor ?? null;
  }

  _release(sub) {
    const view = this.#views.get(sub.topic);
    if (!view || !view.subs.delete(sub) || view.subs.size) return;
    this.#views.delete(sub.topic);
    if (!this.#closed) this.#link.detach(sub.topic);
  }

  _receive(message) {
    if (this.#closed) return;
    switch (message.op) {
      case "state":
        this.#setState(message.state, message.detail || {});
        break;
      case "welcome":
        this.#user = message.frame.user;
        this.#emit("welcome", message.frame);
        break;
      case "error":
        this.#emit("error", message.local
          ? new HubError(message.frame.code, message.frame.message)
          : message.frame);
        break;
      case "frame":
        this.#emit("frame", message.frame);
        break;
      case "topic":
        this.#onTopic(message);
        break;
      case "published": {
        const pending = this.#pending.get(message.rid);
        if (!pending) break;
        this.#pending.delete(message.rid);
        if (message.error) {
          const { code, message: text, frame } = message.error;
          pending.reject(new HubError(code, text, frame || null));
        } else {
          pending.resolve({ topic: message.topic, cursor: message.cursor });
        }
        break;
      }
      default:
        break; // "ready", and messages of later versions
    }
  }

  // The SharedWorker did not start: carry on with this page's own socket.
  #fallBack() {
    if (this.#closed) return;
    this.#mode = "page";
    this.#rejectPending("disconnected", "the shared connection failed to start");
    this.#link = new LocalLink(this, pageConnection(this.#opts), false);
    for (const view of this.#views.values()) {
      view.subscribed = false;
      this.#link.attach(view.topic, view.topic, view.cursor);
    }
    if (this.#listeners.get("frame")?.size) this.#link.frames(true);
  }

  #rejectPending(code, text) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of pending) reject(new HubError(code, text));
  }

  #setState(state, detail) {
    if (this.#state === state && state !== States.RECONNECTING) return;
    this.#state = state;
    this.#emit("state", state, detail);
  }

  #emit(name, ...args) {
    for (const fn of this.#listeners.get(name) || []) {
      try {
        fn(...args);
      } catch (error) {
        report(error);
      }
    }
  }

  #onTopic({ key, kind, frame }) {
    const view = this.#views.get(key);
    if (!view) return;
    switch (kind) {
      case "subscribed":
        view.subscribed = true;
        view.lastSubscribed = frame;
        if (!view.since && !view.delivered) view.cursor = frame.cursor;
        for (const sub of view.subs) this.#call(sub, "onSubscribed", frame);
        break;
      case "event":
        if (view.hold) view.held.push(frame);
        else this.#deliver(view, frame);
        break;
      case "gap":
        this.#onGap(view, frame);
        break;
      case "error":
        for (const sub of view.subs) this.#call(sub, "onError", frame);
        break;
      default:
        break;
    }
  }

  #deliver(view, frame) {
    const cursor = frame.cursor;
    if (typeof cursor === "string") {
      if (view.seen.has(cursor)) return; // delivered before: never twice
      view.seen.add(cursor);
      if (view.seen.size > this.#opts.dedupeWindow) view.seen.delete(view.seen.values().next().value);
      view.cursor = cursor;
      view.delivered = true;
    }
    for (const sub of view.subs) this.#call(sub, "onEvent", frame);
  }

  #onGap(view, frame) {
    view.cursor = frame.cursor;
    view.delivered = true;
    if (frame.cursor === null) view.seen.clear();
    const waits = [];
    for (const sub of view.subs) {
      const result = this.#call(sub, "onGap", frame);
      if (result && typeof result.then === "function") waits.push(result);
    }
    if (!waits.length) return;
    const hold = Promise.allSettled(waits).then(() => {
      if (view.hold !== hold) return;
      view.hold = null;
      const held = view.held;
      view.held = [];
      for (const event of held) {
        if (this.#views.get(view.topic) === view) this.#deliver(view, event);
      }
    });
    view.hold = hold;
  }

  #call(sub, name, frame) {
    const fn = sub._handlers[name];
    if (sub.closed || typeof fn !== "function") return undefined;
    try {
      return fn.call(sub, frame);
    } catch (error) {
      report(error);
      return undefined;
    }
  }
}
