// The home page's "Realtime hub" card: the state of this browser's one hub connection
// (shared with the bell and every other tab), and who the hub says we are.
import { hub } from "./shared-hub.js";

const card = document.getElementById("hub-status");

function show(state, label, detail) {
  card.dataset.state = state;
  card.querySelector('[data-role="state"]').textContent = label;
  card.querySelector('[data-role="detail"]').textContent = detail;
}

if (card) {
  let welcome = null;
  const draw = (state, detail = {}) => {
    if (state === "open" && welcome) {
      const who = welcome.user === null ? "anonymous" : `user #${welcome.user}`;
      show("live", "live", `Connected as ${who} · heartbeat every ${welcome.heartbeat} s.`);
    } else if (state === "offline") {
      show("offline", "offline", "This browser is offline; reconnecting when the network is back.");
    } else if (state === "reconnecting") {
      const why = detail.reason ? `${detail.reason}; ` : "";
      show("offline", "offline", `Disconnected (${why}retrying in ${Math.round((detail.delay || 0) / 1000)} s).`);
    }
  };
  hub.on("welcome", (frame) => {
    welcome = frame;
    draw(hub.state);
  });
  hub.on("state", draw);
}
