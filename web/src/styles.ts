// All widget CSS lives in the shadow root: the host page cannot restyle us and we cannot leak.
export function css(color: string): string {
  const accent = color.replace(/[;{}<>\\]/g, "") || "#2563eb"; // a colour, never more CSS
  return `
:host { all: initial; }
* { box-sizing: border-box; }
.root { --accent: ${accent}; --ink: #e5484d; --fg: #0f172a; --muted: #64748b; --line: #e2e8f0; --bg: #ffffff; --soft: #f8fafc;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); }
button { font: inherit; cursor: pointer; }
button:disabled { cursor: default; opacity: .45; }
:focus-visible { outline: 3px solid color-mix(in srgb, var(--accent) 55%, white); outline-offset: 2px; }
.launcher { position: fixed; z-index: 2147483646; display: inline-flex; align-items: center; gap: 8px; padding: 10px 16px 10px 14px;
  border: 0; border-radius: 999px; background: var(--accent); color: #fff; font-weight: 600; font-size: 14px; letter-spacing: .01em;
  box-shadow: 0 6px 20px rgba(15, 23, 42, .22), 0 2px 6px rgba(15, 23, 42, .16); transition: transform .15s ease, box-shadow .15s ease; }
.launcher:hover { transform: translateY(-1px); box-shadow: 0 10px 26px rgba(15, 23, 42, .26), 0 3px 8px rgba(15, 23, 42, .18); }
.launcher svg { width: 18px; height: 18px; fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; }
.launcher[data-busy] { opacity: .8; cursor: progress; }
.bottom-right { right: 20px; bottom: 20px; } .bottom-left { left: 20px; bottom: 20px; }
.top-right { right: 20px; top: 20px; } .top-left { left: 20px; top: 20px; }
.backdrop { position: fixed; inset: 0; z-index: 2147483647; display: flex; align-items: center; justify-content: center; padding: 2vh 2vw;
  background: rgba(15, 23, 42, .55); backdrop-filter: blur(2px); }
.dialog { display: flex; flex-direction: column; width: min(1180px, 100%); max-height: 100%; background: var(--bg); border-radius: 14px;
  box-shadow: 0 24px 64px rgba(15, 23, 42, .35); overflow: hidden; }
.head { display: flex; align-items: center; justify-content: space-between; gap: 12px; padding: 14px 18px; border-bottom: 1px solid var(--line); }
.head h2 { margin: 0; font-size: 16px; font-weight: 650; }
.head p { margin: 2px 0 0; color: var(--muted); font-size: 13px; }
.close { border: 0; background: transparent; border-radius: 8px; width: 34px; height: 34px; font-size: 22px; line-height: 1; color: var(--muted); }
.close:hover { background: var(--soft); color: var(--fg); }
.body { display: flex; min-height: 0; flex: 1; }
.main { flex: 1; min-width: 0; display: flex; flex-direction: column; background: #f1f5f9; border-right: 1px solid var(--line); }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; padding: 10px 12px; background: var(--bg); border-bottom: 1px solid var(--line); }
.tool { display: inline-flex; align-items: center; gap: 6px; padding: 6px 11px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg); font-size: 13px; }
.tool:hover:not(:disabled) { background: var(--soft); }
.tool[aria-pressed="true"] { border-color: var(--accent); background: color-mix(in srgb, var(--accent) 10%, white); color: color-mix(in srgb, var(--accent) 80%, black); }
.tool .icon { width: 16px; height: 16px; fill: none; stroke: currentColor; stroke-width: 1.8; stroke-linecap: round; stroke-linejoin: round; }
.sep { flex: 1; }
.stage { flex: 1; min-height: 0; overflow: auto; padding: 16px; display: flex; align-items: flex-start; justify-content: center; }
.frame { position: relative; width: min(100%, calc((96vh - 170px) * var(--ratio, 1.6))); max-width: 100%; border-radius: 6px; overflow: hidden;
  box-shadow: 0 1px 3px rgba(15, 23, 42, .18), 0 0 0 1px rgba(15, 23, 42, .06); background: #fff; }
.shot, .overlay { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
.overlay { touch-action: none; cursor: crosshair; }
.stage[data-tool="note"] .overlay { cursor: copy; }
.ink { fill: none; stroke: var(--ink); stroke-width: 3; vector-effect: non-scaling-stroke; stroke-linecap: round; }
rect.ink { fill: rgba(229, 72, 77, .06); }
.pin circle { fill: var(--ink); stroke: #fff; stroke-width: 2; }
.pin text { fill: #fff; font: 700 14px system-ui, sans-serif; pointer-events: none; }
.loading { flex: 1; display: flex; align-items: center; justify-content: center; color: var(--muted); padding: 80px 0; }
.side { width: 340px; flex: none; display: flex; flex-direction: column; gap: 14px; padding: 16px 18px; overflow: auto; }
.field { display: flex; flex-direction: column; gap: 6px; }
.field label, .notes label { font-weight: 600; font-size: 13px; }
.field .hint { color: var(--muted); font-weight: 400; }
textarea, input { font: inherit; color: var(--fg); width: 100%; padding: 8px 10px; border: 1px solid #cbd5e1; border-radius: 8px; background: #fff; }
textarea { resize: vertical; min-height: 96px; }
textarea:focus, input:focus { outline: none; border-color: var(--accent); box-shadow: 0 0 0 3px color-mix(in srgb, var(--accent) 22%, transparent); }
.notes { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 10px; }
.notes li { position: relative; display: flex; flex-direction: column; gap: 4px; }
.notes textarea { min-height: 52px; }
.badge { display: inline-flex; align-items: center; justify-content: center; width: 20px; height: 20px; margin-right: 6px; border-radius: 50%;
  background: var(--ink); color: #fff; font-size: 12px; font-weight: 700; }
.remove { position: absolute; top: -4px; right: 0; border: 0; background: transparent; color: var(--muted); font-size: 18px; width: 26px; height: 26px; border-radius: 6px; }
.remove:hover { background: var(--soft); color: var(--fg); }
.add-note { align-self: flex-start; border: 1px dashed #cbd5e1; background: transparent; color: var(--muted); border-radius: 8px; padding: 6px 10px; font-size: 13px; }
.add-note:hover { color: var(--fg); border-color: var(--muted); }
.status { margin: 0; padding: 10px 12px; border-radius: 8px; font-size: 13px; }
.status[hidden] { display: none; }
.status.error { background: #fef2f2; color: #991b1b; border: 1px solid #fecaca; }
.status.ok { background: #f0fdf4; color: #166534; border: 1px solid #bbf7d0; }
.status.info { background: var(--soft); color: var(--muted); border: 1px solid var(--line); }
.actions { margin-top: auto; display: flex; justify-content: flex-end; gap: 8px; padding-top: 4px; }
.primary, .secondary { padding: 9px 16px; border-radius: 8px; font-weight: 600; font-size: 14px; }
.primary { border: 1px solid var(--accent); background: var(--accent); color: #fff; }
.primary:hover:not(:disabled) { filter: brightness(1.08); }
.secondary { border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
.secondary:hover { background: var(--soft); }
.dialog.small { width: min(460px, 100%); }
.done { display: flex; flex-direction: column; align-items: center; text-align: center; gap: 6px; padding: 32px 28px 28px; }
.done h3 { margin: 8px 0 0; font-size: 17px; }
.done p { margin: 0 0 14px; color: var(--muted); }
.check { width: 52px; height: 52px; border-radius: 50%; display: flex; align-items: center; justify-content: center;
  background: #dcfce7; color: #15803d; font-size: 28px; font-weight: 700; }
.privacy { margin: 0; color: var(--muted); font-size: 12px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 760px) {
  .backdrop { padding: 0; }
  .dialog { height: 100%; border-radius: 0; }
  .head { padding: 10px 14px; }
  .head p { display: none; }
  .body { flex-direction: column; overflow: auto; }
  .main { flex: none; border-right: 0; border-bottom: 1px solid var(--line); }
  .toolbar { gap: 4px; padding: 8px; }
  .tool { padding: 6px 8px; font-size: 12px; gap: 4px; }
  .sep { flex: 1 0 0; }
  .stage { padding: 10px; }
  .frame { width: min(100%, calc((48vh - 20px) * var(--ratio, 0.5))); }
  .side { width: auto; overflow: visible; }
}
@media (prefers-reduced-motion: reduce) { .launcher { transition: none; } }
`;
}
