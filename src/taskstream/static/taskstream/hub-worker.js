// taskstream's SharedWorker: the one WebSocket of this browser for one hub URL, shared by
// every tab's `new Hub()` (client.js starts it; nothing to do for the page).
//
// Each tab talks to it over a MessagePort (the messages are documented beside
// `Connection` in client.js). A tab says goodbye on pagehide; one that crashes or is
// killed releases a Web Lock it held, which is how the worker learns it is gone.
import { Connection } from "./client.js";

// The name is "taskstream <ws url> <client.js url>" (see WorkerLink in client.js).
const url = self.name.split(" ")[1];
let connection = null;

self.addEventListener("connect", (event) => {
  const port = event.ports[0];
  if (!connection || connection.closed) connection = new Connection({ url });
  const conn = connection;
  const sink = { send: (message) => port.postMessage(message), wantsFrames: false };
  conn.addSink(sink);
  let gone = false;
  const leave = () => {
    if (gone) return;
    gone = true;
    conn.removeSink(sink);
    port.close();
  };
  port.onmessage = ({ data: m }) => {
    if (gone) return;
    switch (m.op) {
      case "hello":
        sink.pageStart = m.pageStart;
        // Granted once the tab no longer holds it: the tab is gone.
        self.navigator.locks?.request(m.lock, leave).catch(() => {});
        if (m.online === false) conn.network(false);
        else conn.wake();
        break;
      case "attach":
        conn.attach(sink, m.key, m.topic, m.since);
        break;
      case "detach":
        conn.detach(sink, m.key);
        break;
      case "publish":
        conn.publish(sink, m.rid, m.topic, m.event, m.data, m.timeout);
        break;
      case "reconnect":
        conn.reconnect();
        break;
      case "network":
        conn.network(m.online);
        break;
      case "check":
        conn.check();
        break;
      case "frames":
        sink.wantsFrames = Boolean(m.on);
        break;
      case "bye":
        leave();
        break;
      default:
        break;
    }
  };
  port.start();
  port.postMessage({ op: "ready" });
});
