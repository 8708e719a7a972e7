// The connection bar of every signed-in page: hidden while the hub is open, it says
// "Offline" or "Reconnecting in N s" (and why) otherwise, with a "Reconnect now" button
// that skips the wait. Built here, right after the top bar (the next stop in the tab
// order; shown in a corner of the screen), so no template has to carry it.
import { hub } from "./shared-hub.js";

const REASONS = {
  1006: "connection lost",
  1009: "frame too large",
  1012: "server restarting",
  1013: "server busy",
  4401: "signed out",
  4408: "too slow to keep up",
  4429: "rate limited",
  4430: "too many connections",
};

function build(anchor) {
  const root = document.createElement("div");
  root.className = "conn";
  root.id = "conn";
  root.hidden = true;
  const text = document.createElement("span");
  text.className = "conn-text";
  text.setAttribute("role", "status"); // read out when it changes, without moving focus
  const button = document.createElement("button");
  button.type = "button";
  button.className = "conn-retry";
  button.id = "conn-retry";
  button.textContent = "Reconnect now";
  button.addEventListener("click", () => hub.reconnect());
  root.append(text, button);
  // Outside the header: a fixed box inside it would be placed relative to the header.
  (anchor.closest("header") || anchor).after(root);
  return { root, text, button };
}

const anchor = document.getElementById("bell");
if (anchor) {
  const { root, text, button } = build(anchor);
  let ticker = null;
  let retryAt = 0;
  let why = "";

  const draw = (state) => {
    root.dataset.state = state;
    if (state === "offline") {
      text.textContent = "Offline";
    } else if (state === "reconnecting") {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      text.textContent = seconds > 0 ? `Reconnecting in ${seconds} s` : "Reconnecting…";
      if (why) text.textContent += ` · ${why}`;
    }
  };

  hub.on("state", (state, detail = {}) => {
    clearInterval(ticker);
    ticker = null;
    const show = state === "offline" || state === "reconnecting";
    if (!show && root.contains(document.activeElement)) anchor.querySelector("button")?.focus();
    root.hidden = !show;
    button.hidden = !show;
    if (state === "reconnecting") {
      retryAt = Date.now() + (detail.delay || 0);
      why = detail.reason || REASONS[detail.code] || "";
      ticker = setInterval(() => draw(state), 1000);
    }
    draw(state);
  });
}
