// A staff page that follows `ops`: when one of the page's events arrives (or a `gap` says
// some were missed) it fetches itself again and swaps in the fresh #ops-region, at most
// one fetch in flight. The server renders the rows; this never builds HTML of its own.
import { hub } from "./shared-hub.js";

const config = JSON.parse(document.getElementById("ops-live").textContent);
const badge = document.getElementById("hub-state");
let fetching = false;
let again = false;

async function refresh() {
  if (fetching) { again = true; return; }
  fetching = true;
  try {
    do {
      again = false;
      const response = await fetch(location.href, { credentials: "same-origin",
                                                    headers: { Accept: "text/html" } });
      if (!response.ok) continue;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html")
        .getElementById("ops-region");
      const region = document.getElementById("ops-region");
      if (fresh && region) {
        region.replaceChildren(...[...fresh.childNodes].map((n) => document.importNode(n, true)));
        region.dispatchEvent(new CustomEvent("ops:refreshed"));
      }
    } while (again);
  } finally {
    fetching = false;
  }
}

function showHubState(state) {
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = state === "open" ? "live" : state;
}
showHubState(hub.state);
hub.on("state", showHubState);

// The workers page also reads each summary itself (ops-workers.js).
export const summaries = new EventTarget();

hub.subscribe(config.topic, {
  since: config.cursor,
  onEvent(frame) {
    if (frame.event === "monitor.summary") {
      summaries.dispatchEvent(new CustomEvent("summary", { detail: frame.data }));
      return;
    }
    if (config.events.includes(frame.event)) refresh();
  },
  onGap() { refresh(); },
});

export { refresh };
