// Types for taskstream/client.js (protocol v1, docs/protocol.md). The module is plain
// JavaScript with no build step; this file lets TypeScript (and editors) check code that
// imports it:  import { Hub } from "/static/taskstream/client.js";

/** A cursor names one stored event of one topic: opaque, compare only for equality. */
export type Cursor = string;

/** connecting | open | reconnecting | offline | closed */
export type HubState = "connecting" | "open" | "reconnecting" | "offline" | "closed";

export declare const States: Readonly<{
  CONNECTING: "connecting";
  OPEN: "open";
  RECONNECTING: "reconnecting";
  OFFLINE: "offline";
  CLOSED: "closed";
}>;

export declare const CloseCodes: Readonly<{
  TOO_LARGE: 1009;
  UNAUTHENTICATED: 4401;
  SLOW_CONSUMER: 4408;
  RATE_LIMITED: 4429;
  TOO_MANY_CONNECTIONS: 4430;
  TOO_MANY_ANONYMOUS: 4431;
}>;

/** Error codes the server sends in `error` frames (docs/protocol.md, "Error codes"). */
export type ServerErrorCode =
  | "bad_frame"
  | "unknown_type"
  | "unknown_topic"
  | "forbidden"
  | "not_allowed"
  | "too_large"
  | "rate_limited"
  | "unauthenticated"
  | "unavailable"
  | "too_many_connections";

/** Codes this client adds for failures of its own. */
export type ClientErrorCode = "timeout" | "disconnected" | "closed" | "token_failed";

/** Event data: a JSON object. */
export type EventData = { [key: string]: unknown };

// -- server frames ----------------------------------------------------------------------

export interface WelcomeFrame {
  type: "welcome";
  /** The user's primary key; null when anonymous. */
  user: number | string | null;
  /** Seconds between server pings. */
  heartbeat: number;
}

export interface SubscribedFrame {
  type: "subscribed";
  topic: string;
  /** The topic's latest cursor when the subscription started. */
  cursor: Cursor;
  id?: number | string;
  /** Topic kinds may add fields (rooms add `presence`). */
  [extra: string]: unknown;
}

export interface EventFrame<D = EventData> {
  type: "event";
  topic: string;
  /** Absent for ephemeral events (typing): at most once, never replayed. */
  cursor?: Cursor;
  event: string;
  data: D;
  /** ISO 8601 UTC with milliseconds. */
  ts: string;
}

export interface GapFrame {
  type: "gap";
  topic: string;
  /** Continue from here; null when the server refused our cursor and we started afresh. */
  cursor: Cursor | null;
}

export interface ErrorFrame {
  type: "error";
  code: ServerErrorCode | (string & {});
  message: string;
  id?: number | string;
}

export interface PublishedFrame {
  type: "published";
  topic: string;
  cursor: Cursor | null;
  id?: number | string;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  topic: string;
  id?: number | string;
}

export interface PongFrame {
  type: "pong";
  id?: number | string;
}

export type ServerFrame =
  | WelcomeFrame
  | SubscribedFrame
  | EventFrame
  | GapFrame
  | ErrorFrame
  | PublishedFrame
  | UnsubscribedFrame
  | PongFrame;

// -- client API -------------------------------------------------------------------------

/** An error answered by the server (`code` from the protocol) or by this client. */
export declare class HubError extends Error {
  constructor(code: string, message: string, frame?: ErrorFrame | null);
  readonly name: "HubError";
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  readonly frame: ErrorFrame | null;
}

/** The `state` listener's detail: while reconnecting, when and why. */
export interface StateDetail {
  /** Reconnect attempt number (reconnecting). */
  attempt?: number;
  /** Milliseconds until the next attempt (reconnecting). */
  delay?: number;
  /** The close code (0 when the client gave up on the socket itself). */
  code?: number;
  /** Why: the server's close reason, or "heartbeat timeout", "handshake timeout", ... */
  reason?: string;
  /** The user from `welcome` (open). */
  user?: number | string | null;
}

export interface Backoff {
  base?: number;
  cap?: number;
  hardCap?: number;
}

export interface HubOptions {
  /** Absolute ws(s):// URL or a path like "/ws/"; default: the page's origin + /ws/. */
  url?: string | null;
  /** A token for the `auth` frame on every connect (see apiToken); null: anonymous. */
  token?: (() => Promise<string | null> | string | null) | null;
  /** "auto": one socket per browser (SharedWorker), else per page; "page"; false: own. */
  shared?: "auto" | "page" | false;
  backoff?: Backoff;
  stableAfter?: number;
  connectTimeout?: number;
  requestTimeout?: number;
  rate?: { perSecond?: number; burst?: number };
  dedupeWindow?: number;
  hardAfterFailures?: number;
  /** A WebSocket implementation (tests); implies a socket of this Hub's own. */
  WebSocket?: { new (url: string): WebSocket };
}

export interface SubscribeOptions<D = EventData> {
  /** Resume after this cursor (e.g. one rendered with the page's state). */
  since?: Cursor | null;
  /** Every event once, in publish order. */
  onEvent?: (this: Subscription, frame: EventFrame<D>) => void;
  /** Events were lost: refetch over HTTP. A returned promise holds later events until it settles. */
  onGap?: (this: Subscription, frame: GapFrame) => void | Promise<unknown>;
  onSubscribed?: (this: Subscription, frame: SubscribedFrame) => void;
  /** forbidden, unknown_topic, not_allowed: not retried on this connection. */
  onError?: (this: Subscription, frame: ErrorFrame) => void;
}

export interface Subscription {
  readonly topic: string;
  readonly closed: boolean;
  /** The cursor of the last event delivered on this topic (resume point), or null. */
  readonly cursor: Cursor | null;
  /** Stop; unsubscribes when it was this Hub's last subscription to the topic. */
  close(): void;
}

export interface HubEvents {
  state: (state: HubState, detail: StateDetail) => void;
  welcome: (frame: WelcomeFrame) => void;
  error: (error: ErrorFrame | HubError) => void;
  frame: (frame: ServerFrame) => void;
}

export declare class Hub {
  constructor(options?: HubOptions);
  readonly state: HubState;
  /** From the last `welcome`: null anonymous, undefined not known yet. */
  readonly user: number | string | null | undefined;
  /** Where the socket lives. */
  readonly sharing: "worker" | "page" | "private";
  /** Returns a function that removes the listener. */
  on<K extends keyof HubEvents>(name: K, fn: HubEvents[K]): () => void;
  subscribe<D = EventData>(topic: string, options?: SubscribeOptions<D>): Subscription;
  /** Rejects with a HubError (server code, "timeout", "disconnected" or "closed"). */
  publish(topic: string, event: string, data?: EventData,
          options?: { timeout?: number }): Promise<{ topic: string; cursor: Cursor | null }>;
  /** Reconnect now, skipping any backoff wait ("reconnect now"). */
  reconnect(): void;
  close(): void;
}

/** Read a cookie (e.g. Django's `csrftoken`). */
export declare function getCookie(name: string): string | null;

/** A `token` option that asks `POST /api/ws-token/` (session + CSRF); null when signed out. */
export declare function apiToken(options?: {
  url?: string;
  csrfToken?: string | null;
  fetchOptions?: RequestInit;
}): () => Promise<string | null>;

/** The socket a SharedWorker (or a page) shares between Hubs; internal to client.js. */
export declare class Connection {
  private constructor();
}
