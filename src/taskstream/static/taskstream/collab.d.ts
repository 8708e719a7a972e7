// Types for taskstream/collab.js (docs/collab.md, "In the browser"). Like client.js it is
// plain JavaScript served as is; it imports the vendored bundle ./vendor/collab-editor.js
// (Yjs, y-protocols, CodeMirror 6, y-codemirror.next; rebuilt by `make vendor-js`).
import type { Hub } from "./client.js";

/** saved: every local change acknowledged; error: refused for good (read-only now). */
export type CollabStatus = "saved" | "syncing" | "offline" | "error";

export declare const Status: Readonly<{
  SAVED: "saved";
  SYNCING: "syncing";
  OFFLINE: "offline";
  ERROR: "error";
}>;

/** Cursor colours, each readable under white text. */
export declare const COLOURS: readonly string[];

/** A stable colour for a name. */
export declare function colourFor(name: string): string;

/** Codes: the server's (forbidden, too_large, bad_update, http_<status>…), "network", "bad_event". */
export declare class CollabError extends Error {
  constructor(code: string, message: string, status?: number);
  readonly name: "CollabError";
  readonly code: string;
  /** The HTTP status for a refused sync, else 0. */
  readonly status: number;
}

export interface Peer {
  /** The Yjs client id of that editor (one per open tab). */
  clientId: number;
  name: string;
  color: string;
  /** This editor. */
  self: boolean;
}

export interface CollabEditorOptions {
  /** Where the editor goes. */
  parent: HTMLElement;
  /** The document's id (the `id` of GET /api/collab/docs/). */
  doc: string;
  hub: Hub;
  /** Shown beside your cursor to the others; color defaults to colourFor(name). */
  user: { name: string; color?: string };
  /** Viewers: nothing can be typed and nothing is sent. */
  readOnly?: boolean;
  /** The documents' API root, default "/api/collab/docs/". */
  api?: string;
  /** The page's CSP nonce, for CodeMirror's <style> element under a strict policy. */
  cspNonce?: string | null;
  /** The editor's accessible name, default "Document text". */
  label?: string;
}

export interface CollabEditorEvents {
  status: (status: CollabStatus) => void;
  peers: (peers: Peer[]) => void;
  error: (error: CollabError) => void;
}

export declare class CollabEditor {
  constructor(options: CollabEditorOptions);
  /** Resolves after the first sync (the text is here); rejects when access is refused. */
  readonly ready: Promise<void>;
  readonly status: CollabStatus;
  /** The text as it is now. */
  readonly text: string;
  readonly readOnly: boolean;
  /** This editor's id in `update` events (`data.client`). */
  readonly clientId: string;
  /** Local changes the server has not acknowledged yet. */
  readonly unsaved: number;
  readonly peers: Peer[];
  /** The Yjs document, its Y.Text "text" and awareness (types: yjs, y-protocols). */
  readonly ydoc: unknown;
  readonly ytext: unknown;
  readonly awareness: unknown;
  /** The CodeMirror EditorView (type: @codemirror/view). */
  readonly view: unknown;
  /** Syncs over HTTP after the first (answers to `gap` and `bad_update`). */
  readonly resyncs: number;
  /** Set from the sync answer. */
  version?: number;
  on<K extends keyof CollabEditorEvents>(name: K, fn: CollabEditorEvents[K]): () => void;
  setReadOnly(readOnly: boolean): void;
  /** Unsubscribe, tell the others this editor left, remove it from the page. */
  destroy(): void;
}
