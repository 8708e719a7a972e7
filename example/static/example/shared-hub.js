// One WebSocket per page: every demo script that imports this gets the same Hub
// (ES modules are evaluated once per URL).
import { Hub } from "../taskstream/client.js";

export const hub = (globalThis.taskstreamDemoHub ??= new Hub());
