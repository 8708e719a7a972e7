// Other editors' cursors and selections, drawn from awareness states. y-codemirror.next has
// its own (yRemoteSelections), but it writes colours as `style` attributes, which a strict
// Content-Security-Policy (style-src without 'unsafe-inline') blocks; this one sets colours
// through the CSSOM (element.style / CodeMirror's cssText), which the policy allows.
// The local cursor is published the same way theirs is ({cursor: {anchor, head}}), so
// clients using either plugin see each other.
import * as Y from "yjs";
import { Annotation, RangeSet } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, WidgetType } from "@codemirror/view";

const redraw = Annotation.define();

const theme = EditorView.baseTheme({
  ".cm-ySelectionCaret": {
    position: "relative",
    borderLeft: "2px solid",
    marginLeft: "-1px",
    marginRight: "-1px",
    boxSizing: "border-box",
    display: "inline",
  },
  ".cm-ySelectionInfo": {
    position: "absolute",
    top: "-1.35em",
    left: "-2px",
    fontSize: ".75em",
    fontFamily: "system-ui, sans-serif",
    lineHeight: "normal",
    userSelect: "none",
    color: "#fff",
    padding: "0 3px",
    borderRadius: "3px 3px 3px 0",
    zIndex: 101,
    whiteSpace: "nowrap",
    pointerEvents: "none",
  },
});

class Caret extends WidgetType {
  constructor(color, name) {
    super();
    this.color = color;
    this.name = name;
  }

  toDOM() {
    const caret = document.createElement("span");
    caret.className = "cm-ySelectionCaret";
    caret.style.borderColor = this.color;
    caret.setAttribute("aria-hidden", "true");
    caret.append("\u2060");
    const info = document.createElement("span");
    info.className = "cm-ySelectionInfo";
    info.style.backgroundColor = this.color;
    info.textContent = this.name; // a user's name: text, never HTML
    caret.append(info, "\u2060");
    return caret;
  }

  eq(other) {
    return other.color === this.color && other.name === this.name;
  }

  ignoreEvent() {
    return true;
  }
}

// CSS colours only: a name or #hex, so nothing else reaches cssText.
const COLOUR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})$/;
const safe = (value, fallback) => (typeof value === "string" && COLOUR.test(value) ? value : fallback);

/** The extension: remote cursors and selections of `awareness`'s other clients in `ytext`. */
export function remoteSelections(ytext, awareness) {
  const plugin = ViewPlugin.fromClass(class {
    constructor(view) {
      this.decorations = RangeSet.of([]);
      this.listener = ({ added, updated, removed }) => {
        const ids = added.concat(updated, removed);
        if (ids.some((id) => id !== awareness.clientID)) {
          view.dispatch({ annotations: [redraw.of(true)] });
        }
      };
      awareness.on("change", this.listener);
    }

    destroy() {
      awareness.off("change", this.listener);
    }

    update(update) {
      const local = awareness.getLocalState();
      if (local != null) {
        const focused = update.view.hasFocus && update.view.dom.ownerDocument.hasFocus();
        const sel = focused ? update.state.selection.main : null;
        if (sel != null) {
          const anchor = Y.createRelativePositionFromTypeIndex(ytext, sel.anchor);
          const head = Y.createRelativePositionFromTypeIndex(ytext, sel.head);
          const cur = local.cursor;
          if (cur == null
              || !Y.compareRelativePositions(Y.createRelativePositionFromJSON(cur.anchor), anchor)
              || !Y.compareRelativePositions(Y.createRelativePositionFromJSON(cur.head), head)) {
            awareness.setLocalStateField("cursor", { anchor, head });
          }
        }
      }
      const doc = update.state.doc;
      const ranges = [];
      awareness.getStates().forEach((state, clientId) => {
        if (clientId === awareness.clientID) return;
        const cursor = state.cursor;
        if (cursor == null || cursor.anchor == null || cursor.head == null) return;
        const anchor = Y.createAbsolutePositionFromRelativePosition(cursor.anchor, ytext.doc);
        const head = Y.createAbsolutePositionFromRelativePosition(cursor.head, ytext.doc);
        if (anchor == null || head == null || anchor.type !== ytext || head.type !== ytext) return;
        const user = state.user || {};
        const color = safe(user.color, "#30bced");
        const light = safe(user.colorLight, color.length === 7 ? `${color}33` : color);
        const name = typeof user.name === "string" ? user.name.slice(0, 60) : "Anonymous";
        const from = Math.min(anchor.index, head.index, doc.length);
        const to = Math.min(Math.max(anchor.index, head.index), doc.length);
        if (from < to) {
          ranges.push(Decoration.mark({
            class: "cm-ySelection", attributes: { style: `background-color: ${light}` },
          }).range(from, to));
        }
        const at = Math.min(head.index, doc.length);
        ranges.push(Decoration.widget({
          side: head.index - anchor.index > 0 ? -1 : 1,
          widget: new Caret(color, name),
        }).range(at));
      });
      this.decorations = Decoration.set(ranges, true);
    }
  }, { decorations: (v) => v.decorations });
  return [theme, plugin];
}
