// The session recorder chunk (loaded by widget.js only with data-record="true").
// Records the page with rrweb, ships batches to /v1/web/append, and ties the page's requests to
// the recording with the br-recording-uuid header.
import { record } from "@rrweb/record";
import { installTracing } from "./trace";

export interface RecorderOptions {
  endpoint: string;
  key: string;
  traceOrigins: string[];
  maskInputs?: boolean;
}

export interface RecorderHandle {
  /** The recording id once the session has started (null if it cannot start). */
  sessionId(): Promise<string | null>;
  current(): string | null;
  /** Send what is buffered now. */
  flush(): Promise<void>;
  stop(): void;
}

interface Session {
  token: string;
  sessionID: string;
  userUUID: string;
}

type Event = { type: number; timestamp: number; data: unknown };

const FLUSH_MS = 5000;
const FLUSH_EVENTS = 400;
const KEEPALIVE_LIMIT = 60_000; // browsers refuse keepalive bodies over 64 KiB in flight
const MAX_BUFFER_EVENTS = 20_000; // when the server is unreachable for long, drop the oldest
const MAX_CUSTOM_EVENTS = 500;
const TRACKER = `fieldreport-web/${__FIELDREPORT_VERSION__}`;

function storage(kind: "local" | "session"): Storage | null {
  try {
    return kind === "local" ? window.localStorage : window.sessionStorage;
  } catch {
    return null;
  }
}

function load<T>(store: Storage | null, name: string): T | null {
  try {
    const raw = store?.getItem(name);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

function save(store: Storage | null, name: string, value: unknown): boolean {
  try {
    if (value === null) store?.removeItem(name);
    else store?.setItem(name, JSON.stringify(value));
    return true;
  } catch {
    return false;
  }
}

async function gzip(text: string): Promise<Blob | null> {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).blob();
}

export function startRecorder(opts: RecorderOptions): RecorderHandle {
  const sessionKey = `fieldreport:session:${opts.key}`;
  const lateKey = `fieldreport:late:${opts.key}`;
  const userKey = "fieldreport:user";
  const ownOrigin = new URL(opts.endpoint, location.href).origin;
  let session: Session | null = load<Session>(storage("session"), sessionKey);
  let buffer: Event[] = [];
  let sending: Promise<void> = Promise.resolve();
  let customCount = 0;
  let stopped = false;
  let refused = false; // the server said no (unknown key, origin not allowed): do not insist
  let stopRecording: (() => void) | undefined;
  let timer = 0;
  let pausedUntil = 0; // Retry-After of a 429/503

  function shutdown(): void {
    stopped = true;
    buffer = [];
    stopRecording?.();
    window.clearInterval(timer);
  }

  const post = (path: string, body: BodyInit, headers: Record<string, string>, keepalive = false) =>
    fetch(`${opts.endpoint}${path}`, { method: "POST", body, headers, keepalive, credentials: "omit", mode: "cors" });

  async function begin(): Promise<Session | null> {
    try {
      const userUUID = load<string>(storage("local"), userKey);
      const r = await post("/v1/web/start", JSON.stringify({ projectKey: opts.key, trackerVersion: TRACKER, ...(userUUID ? { userUUID } : {}) }), { "Content-Type": "application/json" });
      if (!r.ok) {
        refused = r.status >= 400 && r.status < 500 && r.status !== 429;
        throw new Error(`start answered ${r.status}`);
      }
      const body = (await r.json()) as Session;
      save(storage("local"), userKey, body.userUUID);
      save(storage("session"), sessionKey, { token: body.token, sessionID: body.sessionID, userUUID: body.userUUID });
      return body;
    } catch (err) {
      console.warn("fieldreport: the session recording could not start:", err);
      return null;
    }
  }

  let ready: Promise<Session | null> = session ? Promise.resolve(session) : begin().then((s) => (session = s));
  void ready.then(() => sendLate());

  // Events that could not leave with the page that recorded them (see flushOnExit).
  async function sendLate(): Promise<void> {
    const late = load<{ token: string; events: Event[] }>(storage("session"), lateKey);
    if (!late) return;
    save(storage("session"), lateKey, null);
    try {
      const r = await upload("/v1/web/late", late.token, late.events);
      if (r.status >= 500 || r.status === 429) save(storage("session"), lateKey, late);
    } catch {
      save(storage("session"), lateKey, late); // offline: try again with the next flush
    }
  }

  async function upload(path: string, token: string, events: Event[]): Promise<Response> {
    const text = JSON.stringify(events);
    const packed = text.length > 2048 ? await gzip(text) : null;
    const headers: Record<string, string> = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    if (packed) headers["Content-Encoding"] = "gzip";
    return post(path, packed ?? text, headers);
  }

  async function flushNow(): Promise<void> {
    if (stopped || Date.now() < pausedUntil) return;
    let current = await ready;
    if (!current && !refused) {
      // The start failed for a passing reason (offline, 5xx, 429): try again, bounded buffer.
      buffer = buffer.slice(-MAX_BUFFER_EVENTS);
      ready = begin().then((s) => (session = s));
      current = await ready;
      if (current) record.takeFullSnapshot(true);
    }
    if (!current) {
      if (refused) shutdown(); // recording is not allowed here: stop, keep no events
      return;
    }
    await sendLate();
    if (!buffer.length) return;
    const events = buffer;
    buffer = [];
    let r: Response;
    try {
      r = await upload("/v1/web/append", current.token, events);
    } catch {
      buffer = events.concat(buffer).slice(-MAX_BUFFER_EVENTS); // offline: retry with the next flush
      return;
    }
    if (r.status === 429 || r.status === 503 || r.status === 507) {
      // The server asks us to slow down: keep the events, wait as long as it says.
      buffer = events.concat(buffer).slice(-MAX_BUFFER_EVENTS);
      const wait = Number(r.headers.get("Retry-After"));
      pausedUntil = Date.now() + (Number.isFinite(wait) && wait > 0 ? Math.min(wait, 600) : 30) * 1000;
    } else if (r.status === 401 || r.status === 403) {
      // The session ended (expired token) or is not valid from here: start a new one with a
      // fresh full snapshot.
      save(storage("session"), sessionKey, null);
      session = null;
      ready = begin().then((s) => (session = s));
      await ready;
      record.takeFullSnapshot(true);
    } else if (r.status === 413) {
      await sendHalves(current.token, events, 0);
    } else if (!r.ok && r.status !== 400) {
      buffer = events.concat(buffer).slice(-MAX_BUFFER_EVENTS);
    }
  }

  // Too large for the server's per-batch limit: send it in halves (a single event that is still
  // too large, e.g. a snapshot of an enormous page, is dropped with a warning).
  async function sendHalves(token: string, events: Event[], depth: number): Promise<void> {
    if (events.length < 2 || depth > 8) {
      console.warn("fieldreport: a recording batch is over the server's size limit; dropped");
      return;
    }
    const middle = Math.ceil(events.length / 2);
    for (const part of [events.slice(0, middle), events.slice(middle)]) {
      const r = await upload("/v1/web/append", token, part).catch(() => null);
      if (r?.status === 413) await sendHalves(token, part, depth + 1);
    }
  }

  function flush(): Promise<void> {
    sending = sending.then(flushNow, flushNow);
    return sending;
  }

  // The page is hidden and may never run again: no async work (compression) can be trusted to
  // finish. Send what fits in a keepalive request; keep the rest in sessionStorage, sent through
  // /v1/web/late by the next flush (this page's, if it comes back, or the next page's).
  function flushOnExit(): void {
    if (!session || !buffer.length) return;
    const events = buffer;
    buffer = [];
    const text = JSON.stringify(events);
    if (text.length <= KEEPALIVE_LIMIT) {
      post("/v1/web/append", text, { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" }, true).catch(() => undefined);
    } else {
      const pending = load<{ token: string; events: Event[] }>(storage("session"), lateKey);
      const all = pending && pending.token === session.token ? pending.events.concat(events) : events;
      save(storage("session"), lateKey, { token: session.token, events: all.slice(-MAX_BUFFER_EVENTS) });
    }
  }

  function custom(tag: string, payload: Record<string, unknown>): void {
    if (stopped || customCount >= MAX_CUSTOM_EVENTS) return;
    customCount += 1;
    try {
      record.addCustomEvent(tag, payload);
    } catch {
      /* recording not started yet */
    }
  }

  stopRecording = record({
    emit(event) {
      if (stopped) return;
      buffer.push(event as Event);
      if (buffer.length >= FLUSH_EVENTS) void flush();
    },
    maskAllInputs: opts.maskInputs !== false,
    maskInputOptions: { password: true },
    blockClass: "rr-block",
    maskTextClass: "fieldreport-mask",
    slimDOMOptions: "all",
    inlineStylesheet: true,
    sampling: { mousemove: 50, scroll: 150, input: "last" },
    checkoutEveryNms: 10 * 60_000,
  });

  // Console errors, uncaught errors and unhandled rejections, as rrweb custom events.
  const text = (v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : typeof v === "string" ? v : safeJSON(v));
  const nativeError = console.error;
  console.error = function (...args: unknown[]) {
    custom("console", { level: "error", message: args.map(text).join(" ").slice(0, 2000) });
    return nativeError.apply(this, args);
  };
  window.addEventListener("error", (ev) => {
    custom("error", { message: String(ev.message).slice(0, 2000), source: ev.filename, line: ev.lineno, column: ev.colno, stack: ev.error?.stack?.slice(0, 4000) });
  });
  window.addEventListener("unhandledrejection", (ev) => {
    custom("error", { message: `Unhandled rejection: ${text(ev.reason)}`.slice(0, 2000), stack: ev.reason?.stack?.slice?.(0, 4000) });
  });

  installTracing({
    recording: () => session?.sessionID ?? null,
    origins: opts.traceOrigins,
    ownOrigin,
    failed: (info) => custom("network", { ...info }),
  });

  timer = window.setInterval(() => void flush(), FLUSH_MS);
  void ready.then((s) => {
    if (!s && refused) shutdown();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flushOnExit();
  });
  window.addEventListener("pagehide", flushOnExit);

  return {
    sessionId: async () => (await ready)?.sessionID ?? null,
    current: () => session?.sessionID ?? null,
    flush,
    stop: shutdown,
  };
}

function safeJSON(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

(window as unknown as { __fieldreportRecorder?: typeof startRecorder }).__fieldreportRecorder = startRecorder;
