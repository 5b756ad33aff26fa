// Wraps the page's fetch and XMLHttpRequest: adds the br-recording-uuid header to same-origin
// requests (and to the origins the team listed), and reports failed requests to the recorder.

export const HEADER = "br-recording-uuid";

export interface TraceOptions {
  /** The current recording id, or null before the session has started. */
  recording(): string | null;
  /** Extra origins (besides the page's own) that get the header. */
  origins: string[];
  /** Origin of the fieldreport server: our own calls are neither traced nor reported. */
  ownOrigin: string;
  failed(info: { method: string; url: string; status: number; error?: string; durationMs: number }): void;
}

function originOf(url: string): string | null {
  try {
    return new URL(url, location.href).origin;
  } catch {
    return null;
  }
}

export function installTracing(opts: TraceOptions): void {
  const origins = new Set([location.origin, ...opts.origins.map((o) => originOf(o)).filter((o): o is string => !!o)]);
  const traced = (url: string) => {
    const origin = originOf(url);
    return origin !== null && origins.has(origin) && !(origin === opts.ownOrigin && isOwnPath(url));
  };
  const own = (url: string) => originOf(url) === opts.ownOrigin && isOwnPath(url);
  const trim = (url: string) => url.slice(0, 500);

  const nativeFetch = window.fetch;
  if (nativeFetch) {
    window.fetch = function (this: unknown, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      const method = (init?.method || (input instanceof Request ? input.method : "GET")).toUpperCase();
      const id = opts.recording();
      if (id && traced(url)) {
        const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
        if (!headers.has(HEADER)) headers.set(HEADER, id);
        init = { ...init, headers };
      }
      const started = performance.now();
      const result = nativeFetch.call(this, input, init);
      if (!own(url)) {
        result.then(
          (r) => { if (r.status >= 400) opts.failed({ method, url: trim(url), status: r.status, durationMs: Math.round(performance.now() - started) }); },
          (e) => opts.failed({ method, url: trim(url), status: 0, error: String(e).slice(0, 300), durationMs: Math.round(performance.now() - started) }),
        );
      }
      return result;
    } as typeof window.fetch;
  }

  const proto = XMLHttpRequest.prototype;
  const nativeOpen = proto.open;
  const nativeSend = proto.send;
  const meta = new WeakMap<XMLHttpRequest, { method: string; url: string }>();
  proto.open = function (this: XMLHttpRequest, method: string, url: string | URL, ...rest: unknown[]) {
    meta.set(this, { method: String(method).toUpperCase(), url: String(url) });
    return (nativeOpen as (...a: unknown[]) => void).call(this, method, url, ...rest);
  } as typeof proto.open;
  proto.send = function (this: XMLHttpRequest, body?: Document | XMLHttpRequestBodyInit | null) {
    const m = meta.get(this);
    const id = opts.recording();
    if (m && id && traced(m.url)) {
      try {
        this.setRequestHeader(HEADER, id);
      } catch {
        /* the request is not in the OPENED state: leave it alone */
      }
    }
    if (m && !own(m.url)) {
      const started = performance.now();
      this.addEventListener("loadend", () => {
        if (this.status === 0 || this.status >= 400) {
          opts.failed({ method: m.method, url: trim(m.url), status: this.status, error: this.status === 0 ? "network error or aborted" : undefined, durationMs: Math.round(performance.now() - started) });
        }
      });
    }
    return nativeSend.call(this, body);
  };
}

function isOwnPath(url: string): boolean {
  try {
    const path = new URL(url, location.href).pathname;
    return path.startsWith("/v1/web/") || path === "/api/v1/reports" || path.startsWith("/widget");
  } catch {
    return false;
  }
}
