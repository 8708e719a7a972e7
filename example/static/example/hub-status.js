// The home page's "Realtime hub" card: opens /ws/ with the session cookie and shows the
// welcome frame. A raw socket on purpose: it checks the endpoint, not a client library.
const card = document.getElementById("hub-status");

function show(state, label, detail) {
  card.dataset.state = state;
  card.querySelector('[data-role="state"]').textContent = label;
  card.querySelector('[data-role="detail"]').textContent = detail;
}

function connect(delay) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws/`);
  ws.addEventListener("message", (msg) => {
    const frame = JSON.parse(msg.data);
    if (frame.type === "welcome") {
      const who = frame.user === null ? "anonymous" : `user #${frame.user}`;
      show("live", "live", `Connected as ${who} · heartbeat every ${frame.heartbeat} s.`);
      delay = 1000;
    }
  });
  ws.addEventListener("close", () => {
    show("offline", "offline", `Disconnected; retrying in ${Math.round(delay / 1000)} s.`);
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

if (card) connect(1000);
