// The one vendored module taskstream/collab.js imports (built by `make vendor-js`): Yjs,
// y-protocols' awareness, CodeMirror 6 and y-codemirror.next, bundled once so that every
// piece shares one copy of yjs (two copies break Yjs' instanceof checks).
export * as Y from "yjs";
export {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from "y-protocols/awareness";
export { fromBase64, toBase64 } from "lib0/buffer";
export { Compartment, EditorState } from "@codemirror/state";
export {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightSpecialChars,
  keymap,
  placeholder,
} from "@codemirror/view";
export { defaultKeymap, indentWithTab } from "@codemirror/commands";
export { yCollab, ySyncFacet, yUndoManagerKeymap } from "y-codemirror.next";
export { remoteSelections } from "./remote-selections.js";
