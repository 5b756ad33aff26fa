// Turning a recording into timeline entries: backend events (from the full-stack API) and
// the console and network events inside the rrweb stream, each at its offset from the start.

const PLUGIN = 6;
const CUSTOM = 5;

function short(value, max = 160) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function parseMaybeJson(text) {
  if (typeof text !== "string") return text;
  const t = text.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

function consoleEntry(ev, payload, offset) {
  if (typeof payload.message === "string") {
    // Our recorder's form: {level, message} (console) or {message, source, line, stack} (error).
    const level = payload.level || "error";
    return {
      kind: "console",
      label: payload.level ? `console.${level}` : "uncaught error",
      level: level === "error" ? "error" : level === "warn" ? "warning" : "info",
      title: short(payload.message),
      offset,
      detail: payload,
    };
  }
  const args = Array.isArray(payload.payload) ? payload.payload.map(parseMaybeJson) : payload.payload;
  const title = Array.isArray(args) ? args.map((a) => (typeof a === "string" ? a : short(a, 80))).join(" ") : short(args);
  return {
    kind: "console",
    label: `console.${payload.level || "log"}`,
    level: payload.level === "error" ? "error" : payload.level === "warn" ? "warning" : "info",
    title: short(title),
    offset,
    detail: { args, trace: payload.trace },
  };
}

function networkEntries(ev, payload, start) {
  const requests = Array.isArray(payload.requests) ? payload.requests : [payload];
  return requests.map((req) => {
    const at = typeof req.startTime === "number" && req.startTime > 1e12 ? req.startTime : ev.timestamp;
    const status = req.status ?? req.responseStatus;
    const failed = typeof status === "number" ? status >= 400 || status === 0 : false;
    return {
      kind: "network",
      label: (req.method || req.initiatorType || "request").toUpperCase(),
      level: failed ? "error" : "info",
      title: `${status ?? ""} ${req.url || req.name || ""}`.trim(),
      offset: at - start,
      detail: req,
    };
  });
}

export function rrwebEntries(events, start) {
  const out = [];
  for (const ev of events) {
    const offset = ev.timestamp - start;
    if (ev.type === PLUGIN && ev.data && typeof ev.data.plugin === "string") {
      const { plugin, payload } = ev.data;
      if (plugin.includes("console")) out.push(consoleEntry(ev, payload || {}, offset));
      else if (plugin.includes("network")) out.push(...networkEntries(ev, payload || {}, start));
    } else if (ev.type === CUSTOM && ev.data && typeof ev.data.tag === "string") {
      const tag = ev.data.tag.toLowerCase();
      const payload = ev.data.payload || {};
      if (tag.includes("console") || tag === "error") out.push(consoleEntry(ev, payload, offset));
      else if (tag.includes("network") || tag === "fetch" || tag === "xhr") out.push(...networkEntries(ev, payload, start));
    }
  }
  return out;
}

export function backendEntries(backend, start) {
  return backend.map((e) => ({
    kind: "backend",
    label: e.type === "exception" ? "exception" : e.level || e.type || "log",
    level: e.type === "exception" || /error|critical|fatal/i.test(e.level || "") ? "error" : /warn/i.test(e.level || "") ? "warning" : "info",
    title: e.title || short(e.payload),
    offset: e.timestamp - start,
    detail: {
      payload: parseMaybeJson(e.payload),
      metadata: parseMaybeJson(e.metadata),
      origin: e.origin || undefined,
      at: new Date(e.timestamp).toISOString(),
    },
    id: e.id,
  }));
}

export function timelineEntries(events, backend, start) {
  const all = [...backendEntries(backend, start), ...rrwebEntries(events, start)];
  return all.sort((a, b) => a.offset - b.offset);
}
