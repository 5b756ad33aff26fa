// Widget configuration: from the script tag's data-* attributes, overridable by fieldreport.init().

export type Position = "bottom-right" | "bottom-left" | "top-right" | "top-left";

export interface Config {
  /** The project's public key. */
  key: string;
  /** Base URL of the fieldreport server (default: where widget.js was loaded from). */
  endpoint: string;
  /** Show the floating button (false for teams that call fieldreport.open() from their own). */
  button: boolean;
  position: Position;
  /** Accent colour of the button and the dialog (any CSS colour). */
  color: string;
  label: string;
  /** Ask for the user's email (optional field). */
  email: boolean;
  /** Record the session with rrweb (loads the recorder chunk). */
  record: boolean;
  /** Mask every input's value in recordings (passwords are masked regardless). */
  maskInputs: boolean;
  /** Extra origins whose requests get the br-recording-uuid header. */
  traceOrigins: string[];
  /** Prefix of the report subject; the comment's first line follows. */
  subject: string;
}

const POSITIONS: Position[] = ["bottom-right", "bottom-left", "top-right", "top-left"];

export function scriptBase(script: HTMLScriptElement | null): string {
  try {
    // `/widget.js` -> the server's base; the pinned `/widget/widget.<hash>.js` -> the same base.
    const base = new URL(".", script && script.src ? script.src : location.href).href;
    return script && /\/widget\/widget\.[0-9a-f]+\.js$/.test(new URL(script.src).pathname) ? new URL("..", base).href : base;
  } catch {
    return ""; // an inline copy on an about:blank page: init({endpoint}) must say where
  }
}

function flag(value: string | undefined | null, fallback: boolean): boolean {
  if (value == null || value === "") return fallback;
  return !/^(false|0|no|off)$/i.test(value.trim());
}

export function splitList(value: string | undefined | null): string[] {
  return (value || "")
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function fromScript(script: HTMLScriptElement | null): Config {
  const d = script ? script.dataset : ({} as DOMStringMap);
  const position = (d.position || "bottom-right") as Position;
  return {
    key: d.key || "",
    endpoint: (d.endpoint || scriptBase(script)).replace(/\/+$/, ""),
    button: flag(d.button, true),
    position: POSITIONS.includes(position) ? position : "bottom-right",
    color: d.color || "#2563eb",
    label: d.label || "Report a bug",
    email: flag(d.email, true),
    record: flag(d.record, false),
    maskInputs: flag(d.maskInputs, true),
    traceOrigins: splitList(d.traceOrigins),
    subject: d.subject || "Bug report",
  };
}

export function merge(base: Config, extra: Partial<Config>): Config {
  const out: Config = { ...base };
  for (const [name, value] of Object.entries(extra) as [keyof Config, unknown][]) {
    if (value === undefined) continue;
    if (name === "traceOrigins" && typeof value === "string") out.traceOrigins = splitList(value);
    else (out as unknown as Record<string, unknown>)[name] = value;
  }
  if (!POSITIONS.includes(out.position)) out.position = "bottom-right";
  out.endpoint = String(out.endpoint).replace(/\/+$/, "");
  return out;
}
