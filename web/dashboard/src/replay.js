// The session replay page: rrweb-player, and beside it one list of the recording's backend
// events and its console and network events. The list follows playback time; clicking an
// entry seeks there. Everything from the recording is put into the page as text (never HTML).
import rrwebPlayer from "rrweb-player";
import "rrweb-player/dist/style.css";
import { timelineEntries } from "./entries.js";
import { jsonTree } from "./tree.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function formatOffset(ms) {
  const sign = ms < 0 ? "-" : "";
  const total = Math.floor(Math.abs(ms) / 1000);
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, "0");
  const tenths = Math.floor((Math.abs(ms) % 1000) / 100);
  return `${sign}${m}:${s}.${tenths}`;
}

async function fetchJson(url) {
  const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

function renderEntry(entry, seek) {
  const li = el("li", `entry kind-${entry.kind} level-${entry.level || "info"}`);
  li.dataset.offset = String(entry.offset);
  li.dataset.kind = entry.kind;
  const head = el("button", "entry-head");
  head.type = "button";
  head.title = "Play from here";
  head.append(el("span", "entry-time", formatOffset(entry.offset)));
  head.append(el("span", "entry-kind", entry.label));
  head.append(el("span", "entry-title", entry.title));
  head.addEventListener("click", () => seek(entry));
  li.append(head);
  if (entry.detail !== undefined && entry.detail !== null && entry.detail !== "") {
    const details = el("details", "entry-detail");
    details.append(el("summary", "", "details"));
    details.append(jsonTree(entry.detail));
    li.append(details);
  }
  return li;
}

async function main() {
  const root = document.getElementById("replay");
  if (!root) return;
  const status = document.getElementById("replay-status");
  const list = document.getElementById("timeline");
  const follow = document.getElementById("follow");
  const filters = document.querySelectorAll("input[data-kind-filter]");
  let events;
  let backend;
  try {
    [events, backend] = await Promise.all([
      fetchJson(root.dataset.eventsUrl),
      root.dataset.backendUrl ? fetchJson(root.dataset.backendUrl) : { events: [] },
    ]);
  } catch (err) {
    status.textContent = `Could not load the recording: ${err.message}`;
    status.classList.add("err");
    return;
  }
  if (!Array.isArray(events) || events.length < 2) {
    status.textContent = "This recording has too few events to replay.";
    return;
  }
  events.sort((a, b) => a.timestamp - b.timestamp);
  const start = events[0].timestamp;
  const stage = document.getElementById("player");
  const width = Math.max(320, stage.clientWidth);
  const player = new rrwebPlayer({
    target: stage,
    props: { events, width, height: Math.round(width * 0.56), autoPlay: false, showController: true, skipInactive: true },
  });
  window.fieldreportPlayer = player;
  status.textContent = "";

  const entries = timelineEntries(events, backend.events || [], start);
  list.replaceChildren(); // the server-rendered backend events, replaced by the full list
  const nodes = [];
  const seek = (entry) => {
    player.goto(Math.max(0, entry.offset), false);
    highlight(Math.max(0, entry.offset));
  };
  for (const entry of entries) {
    const node = renderEntry(entry, seek);
    nodes.push(node);
    list.append(node);
  }
  document.getElementById("timeline-count").textContent = String(entries.length);
  if (!entries.length) list.append(el("li", "muted empty", "No backend, console or network events in this recording."));

  let current = null;
  function highlight(time) {
    root.dataset.time = String(Math.round(time));
    let last = null;
    for (const node of nodes) {
      const past = Number(node.dataset.offset) <= time;
      node.classList.toggle("past", past);
      if (past && !node.hidden) last = node;
    }
    if (last !== current) {
      current?.classList.remove("current");
      last?.classList.add("current");
      current = last;
      if (last && follow?.checked) last.scrollIntoView({ block: "nearest" });
    }
  }
  player.addEventListener("ui-update-current-time", (detail) => highlight(detail.payload));
  for (const box of filters) {
    box.addEventListener("change", () => {
      for (const node of nodes) {
        if (node.dataset.kind === box.dataset.kindFilter) node.hidden = !box.checked;
      }
    });
  }
  // ?t=SECONDS (e.g. from a backend event's link) starts there.
  const t = Number(new URLSearchParams(location.search).get("t"));
  highlight(0);
  if (t > 0) seek({ offset: t * 1000 });
}

main();
