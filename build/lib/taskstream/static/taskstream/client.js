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
//   hub.on("state", (state, detail) => ...);     // connecting | open | reconnecting | closed
//   await hub.publish("room:lobby", "message", { body: "hi" });
//   sub.close(); hub.close();
//
// What it does for the caller: reconnects with exponential backoff and full jitter,
// resubscribes every topic from the last cursor it delivered (so nothing published
// while offline is lost), never delivers an event twice, pings every heartbeat and
// treats a silent connection as dead, and paces its own frames under the server's
// rate limit.

export const States = Object.freeze({
  CONNECTING: "connecting",
  OPEN: "open",
  RECONNECTING: "reconnecting",
  CLOSED: "closed",
});

// Close codes the server uses (docs/protocol.md, "Close codes").
export const CloseCodes = Object.freeze({
  TOO_LARGE: 1009,
  UNAUTHENTICATED: 4401,
  SLOW_CONSUMER: 4408,
  RATE_LIMITED: 4429,
});

// Codes the server uses for "try again shortly".
const TRANSIENT_ERRORS = new Set(["rate_limited", "unavailable"]);

const DEFAULTS = {
  url: null,
  token: null,
  // Reconnect delays in ms: full jitter over min(cap, base * 2^attempt). `hardCap` is
  // the ceiling after authentication failures, 4429, and long runs of failed handshakes.
  backoff: { base: 500, cap: 10_000, hardCap: 60_000 },
  // A connection open this long resets the backoff.
  stableAfter: 5_000,
  // Handshakes (socket open + welcome + auth) that take longer are abandoned.
  connectTimeout: 10_000,
  // Publish acks that take longer reject with code "timeout".
  requestTimeout: 10_000,
  // Outbound pacing, kept below the server's default RATE_PER_SECOND=20 / RATE_BURST=60.
  rate: { perSecond: 15, burst: 40 },
  // How many delivered cursors per topic are remembered to drop duplicates.
  dedupeWindow: 1000,
  // Failed handshakes in a row (no welcome) before the backoff uses `hardCap`: a
  // browser cannot tell a refused handshake (403) from a server that is down.
  hardAfterFailures: 8,
  WebSocket: globalThis.WebSocket,
};

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
  #url;
  #ws = null;
  #state = States.CONNECTING;
  #ready = false; // welcome (and auth, if any) done on the current socket
  #authId = null;
  #closed = false;
  #listeners = new Map();
  #topics = new Map(); // topic -> TopicState
  #requests = new Map(); // request id -> { kind, topic?, resolve?, reject?, timer? }
  #outbox = []; // publishes waiting for an open connection
  #nextId = 1;
  #attempt = 0;
  #failedHandshakes = 0;
  #user = undefined;
  #heartbeat = 0;
  #lastReceived = 0;
  #lastPing = 0;
  #timers = { retry: null, connect: null, stable: null, beat: null, flush: null };
  #queue = []; // outbound frames, paced by a token bucket
  #tokens;
  #refilled;
  #onOnline = () => this.reconnect();
  #onVisible = () => {
    if (globalThis.document?.visibilityState === "visible") this.#checkAlive();
  };

  constructor(options = {}) {
    this.#opts = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...(options.backoff || {}) },
      rate: { ...DEFAULTS.rate, ...(options.rate || {}) },
    };
    if (typeof this.#opts.WebSocket !== "function") {
      throw new TypeError("taskstream Hub needs a WebSocket implementation");
    }
    this.#url = absoluteUrl(this.#opts.url);
    this.#tokens = this.#opts.rate.burst;
    this.#refilled = Date.now();
    globalThis.addEventListener?.("online", this.#onOnline);
    globalThis.document?.addEventListener?.("visibilitychange", this.#onVisible);
    this.#connect();
  }

  /** connecting | open | reconnecting | closed */
  get state() {
    return this.#state;
  }

  /** The user id from the last `welcome` (null: anonymous; undefined: not yet known). */
  get user() {
    return this.#user;
  }

  /**
   * Listen to hub-level events; returns a function that removes the listener.
   * "state" (state, detail), "welcome" (frame), "error" (frame or HubError: errors no
   * request owns), "frame" (every parsed server frame, for debugging).
   */
  on(name, fn) {
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(fn);
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
    let state = this.#topics.get(topic);
    if (state) {
      state.subs.add(sub);
      if (since && since !== state.cursor) {
        if (state.cursor === null && state.reqId === null) {
          state.cursor = since; // not asked for yet: the first resume point wins
        } else {
          console.warn(`taskstream: ${topic} is already subscribed on this hub; the new ` +
                       "subscription's `since` is ignored (use another Hub to replay)");
        }
      }
      if (state.subscribed && state.lastSubscribed) this.#call(sub, "onSubscribed", state.lastSubscribed);
      return sub;
    }
    state = {
      topic,
      subs: new Set([sub]),
      cursor: since,
      seen: new Set(),
      subscribed: false,
      reqId: null,
      sentSince: null,
      lastSubscribed: null,
      hold: null,
      held: [],
      retries: 0,
      retryTimer: null,
    };
    this.#topics.set(topic, state);
    if (this.#ready) this.#sendSubscribe(state);
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
      const id = this.#id();
      const request = { kind: "publish", topic, resolve, reject, timer: null, sent: false };
      request.frame = { type: "publish", topic, event, data, id };
      request.timer = setTimeout(() => {
        this.#requests.delete(id);
        this.#outbox = this.#outbox.filter((r) => r !== request);
        reject(new HubError("timeout", `no answer to publish on ${topic} within ${timeout} ms`));
      }, timeout);
      this.#requests.set(id, request);
      if (this.#ready) this.#sendRequest(request);
      else this.#outbox.push(request);
    });
  }

  /** Reconnect now (e.g. after the user signed in), skipping any backoff wait. */
  reconnect() {
    if (this.#closed) return;
    if (this.#ws && this.#ready) return;
    this.#attempt = 0;
    this.#failedHandshakes = 0;
    if (this.#ws) this.#drop({ code: 0, reason: "reconnect" }, false);
    this.#connect();
  }

  /** Close the socket for good and cancel everything pending. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    globalThis.removeEventListener?.("online", this.#onOnline);
    globalThis.document?.removeEventListener?.("visibilitychange", this.#onVisible);
    const ws = this.#ws;
    this.#teardown(new HubError("closed", "this hub was closed"));
    clearTimeout(this.#timers.retry);
    for (const request of this.#outbox) {
      clearTimeout(request.timer);
      request.reject(new HubError("closed", "this hub was closed"));
    }
    this.#outbox = [];
    for (const state of this.#topics.values()) clearTimeout(state.retryTimer);
    this.#topics.clear();
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this.#setState(States.CLOSED, {});
  }

  // -- internals used by Subscription ---------------------------------------------------

  _cursorOf(topic) {
    return this.#topics.get(topic)?.cursor ?? null;
  }

  _release(sub) {
    const state = this.#topics.get(sub.topic);
    if (!state || !state.subs.delete(sub) || state.subs.size) return;
    this.#topics.delete(sub.topic);
    clearTimeout(state.retryTimer);
    if (this.#ready) {
      const id = this.#id();
      this.#requests.set(id, { kind: "unsubscribe", topic: sub.topic });
      this.#send({ type: "unsubscribe", topic: sub.topic, id });
    }
  }

  // -- connection lifecycle -------------------------------------------------------------

  #connect() {
    clearTimeout(this.#timers.retry);
    this.#timers.retry = null;
    if (this.#closed) return;
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
      if (request.kind !== "publish") continue;
      if (request.sent) {
        clearTimeout(request.timer);
        request.reject(error);
        this.#requests.delete(id);
      }
    }
    for (const [id, request] of this.#requests) {
      if (request.kind !== "publish") this.#requests.delete(id);
    }
    for (const state of this.#topics.values()) {
      state.subscribed = false;
      state.reqId = null;
      clearTimeout(state.retryTimer);
      state.retryTimer = null;
    }
    return wasReady;
  }

  #lost({ code, reason }) {
    const wasReady = this.#teardown(
      new HubError("disconnected", "the connection dropped before the server answered"),
    );
    if (this.#closed) return;
    this.#failedHandshakes = wasReady ? 0 : this.#failedHandshakes + 1;
    const { base, cap, hardCap } = this.#opts.backoff;
    const hard =
      code === CloseCodes.UNAUTHENTICATED ||
      code === CloseCodes.RATE_LIMITED ||
      reason === "unauthenticated";
    let delay;
    if (hard) {
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

  #becomeReady() {
    clearTimeout(this.#timers.connect);
    this.#ready = true;
    this.#failedHandshakes = 0;
    this.#timers.stable = setTimeout(() => {
      this.#attempt = 0;
    }, this.#opts.stableAfter);
    this.#startHeartbeat();
    this.#setState(States.OPEN, { user: this.#user });
    for (const state of this.#topics.values()) this.#sendSubscribe(state);
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const request of waiting) this.#sendRequest(request);
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
      this.#emit("error", new HubError("bad_frame", "the server sent invalid JSON"));
      return;
    }
    if (!frame || typeof frame !== "object") return;
    this.#emit("frame", frame);
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
    this.#user = frame.user;
    this.#heartbeat = Number(frame.heartbeat) * 1000 || 0;
    this.#emit("welcome", frame);
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
          this.#emit("error", error);
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
    if (!state.sentSince) state.cursor = frame.cursor;
    for (const sub of state.subs) this.#call(sub, "onSubscribed", frame);
  }

  #onEvent(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    if (state.hold) {
      state.held.push(frame);
      return;
    }
    this.#deliver(state, frame);
  }

  #deliver(state, frame) {
    const cursor = frame.cursor;
    if (typeof cursor === "string") {
      if (state.seen.has(cursor)) return; // delivered before: never twice
      state.seen.add(cursor);
      if (state.seen.size > this.#opts.dedupeWindow) {
        state.seen.delete(state.seen.values().next().value);
      }
      state.cursor = cursor;
    }
    for (const sub of state.subs) this.#call(sub, "onEvent", frame);
  }

  #onGap(frame) {
    const state = this.#topics.get(frame.topic);
    if (!state) return;
    state.cursor = frame.cursor;
    const waits = [];
    for (const sub of state.subs) {
      const result = this.#call(sub, "onGap", frame);
      if (result && typeof result.then === "function") waits.push(result);
    }
    if (!waits.length) return;
    const hold = Promise.allSettled(waits).then(() => {
      if (state.hold !== hold) return;
      state.hold = null;
      const held = state.held;
      state.held = [];
      for (const event of held) {
        if (this.#topics.get(state.topic) === state) this.#deliver(state, event);
      }
    });
    state.hold = hold;
  }

  #onError(frame) {
    const request = frame.id != null ? this.#requests.get(frame.id) : undefined;
    if (frame.id != null && frame.id === this.#authId) {
      this.#emit("error", frame);
      this.#drop({ code: 0, reason: "unauthenticated" });
      return;
    }
    if (!request) {
      this.#emit("error", frame);
      return;
    }
    if (request.kind === "publish") {
      this.#settle(frame, new HubError(frame.code, frame.message, frame));
      return;
    }
    this.#requests.delete(frame.id);
    if (request.kind !== "subscribe") return;
    const state = this.#topics.get(request.topic);
    if (!state || state.reqId !== frame.id) return;
    state.reqId = null;
    if (frame.code === "bad_frame" && state.sentSince) {
      // The server does not know our cursor (e.g. from another deployment): start over
      // from now and tell the caller, as for any other gap.
      state.cursor = null;
      state.seen.clear();
      const gap = { type: "gap", topic: state.topic, cursor: null };
      for (const sub of state.subs) this.#call(sub, "onGap", gap);
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
    // forbidden, unknown_topic, not_allowed: asked again only on the next connection.
    for (const sub of state.subs) this.#call(sub, "onError", frame);
  }

  #settle(frame, error) {
    const request = this.#requests.get(frame.id);
    if (!request || request.kind !== "publish") return;
    this.#requests.delete(frame.id);
    clearTimeout(request.timer);
    if (error) request.reject(error);
    else request.resolve({ topic: frame.topic, cursor: frame.cursor });
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
