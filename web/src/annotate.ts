// The annotation editor: boxes, arrows and numbered notes drawn over the screenshot.
// Shapes live in screenshot coordinates (CSS pixels of the captured viewport); an SVG overlay
// shows them while editing and render() burns them into the PNG that is sent.
import { h, svg } from "./dom";

export type Tool = "box" | "arrow" | "note";
export type Shape =
  | { kind: "box"; x: number; y: number; w: number; h: number }
  | { kind: "arrow"; x1: number; y1: number; x2: number; y2: number }
  | { kind: "note"; x: number; y: number; text: string };

export const INK = "#e5484d";
const MIN_DRAG = 6;

export interface Editor {
  stage: HTMLElement;
  toolbar: HTMLElement;
  notes: HTMLElement;
  shapes: Shape[];
  noteTexts(): string[];
  render(): HTMLCanvasElement;
  addNoteAtCenter(): void;
}

export function createEditor(shot: HTMLCanvasElement, width: number, height: number, onChange: () => void): Editor {
  const shapes: Shape[] = [];
  let tool: Tool = "box";
  let draft: Shape | null = null;

  const overlay = svg("svg", {
    class: "overlay",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    role: "img",
    "aria-label": "Screenshot annotations",
  });
  const defs = svg("defs", {}, [
    svg("marker", { id: "fr-head", viewBox: "0 0 10 10", refX: "8", refY: "5", markerWidth: "5", markerHeight: "5", orient: "auto-start-reverse" }, [
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: INK }),
    ]),
  ]);
  const layer = svg("g");
  overlay.append(defs, layer);
  shot.removeAttribute("style"); // the capture library sizes it in pixels; the frame scales it
  shot.classList.add("shot");
  shot.setAttribute("aria-hidden", "true");
  const frame = h("div", { class: "frame" }, [shot, overlay]);
  frame.style.aspectRatio = `${width} / ${height}`;
  frame.style.setProperty("--ratio", (width / height).toFixed(4));
  const stage = h("div", { class: "stage", "data-tool": tool }, [frame]);

  const toolButtons = new Map<Tool, HTMLButtonElement>();
  const toolbar = h("div", { class: "toolbar", role: "toolbar", "aria-label": "Annotation tools" });
  const tools: [Tool, string, string][] = [
    ["box", "Box", "Draw a box: drag over the screenshot"],
    ["arrow", "Arrow", "Draw an arrow: drag from its tail to its head"],
    ["note", "Note", "Place a numbered note: click the screenshot"],
  ];
  for (const [name, label, title] of tools) {
    const b = h("button", { type: "button", class: "tool", title, "aria-pressed": String(name === tool), "data-tool": name }, [icon(name), label]) as HTMLButtonElement;
    b.addEventListener("click", () => select(name));
    toolButtons.set(name, b);
    toolbar.append(b);
  }
  const undo = h("button", { type: "button", class: "tool", title: "Undo the last annotation", "data-action": "undo" }, ["Undo"]) as HTMLButtonElement;
  const clear = h("button", { type: "button", class: "tool", title: "Remove every annotation", "data-action": "clear" }, ["Clear"]) as HTMLButtonElement;
  undo.addEventListener("click", () => { shapes.pop(); redraw(); });
  clear.addEventListener("click", () => { shapes.length = 0; redraw(); });
  toolbar.append(h("span", { class: "sep", "aria-hidden": "true" }), undo, clear);

  const notes = h("ol", { class: "notes", "aria-label": "Notes" });

  function select(name: Tool): void {
    tool = name;
    stage.dataset.tool = name;
    for (const [n, b] of toolButtons) b.setAttribute("aria-pressed", String(n === name));
  }

  function point(ev: PointerEvent): { x: number; y: number } {
    const r = overlay.getBoundingClientRect();
    const x = ((ev.clientX - r.left) / r.width) * width;
    const y = ((ev.clientY - r.top) / r.height) * height;
    return { x: clamp(x, 0, width), y: clamp(y, 0, height) };
  }

  overlay.addEventListener("pointerdown", (ev: PointerEvent) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    const p = point(ev);
    if (tool === "note") {
      addNote(p.x, p.y);
      return;
    }
    overlay.setPointerCapture(ev.pointerId);
    draft = tool === "box" ? { kind: "box", x: p.x, y: p.y, w: 0, h: 0 } : { kind: "arrow", x1: p.x, y1: p.y, x2: p.x, y2: p.y };
    const start = p;
    const move = (e: PointerEvent) => {
      const q = point(e);
      if (draft?.kind === "box") Object.assign(draft, { x: Math.min(start.x, q.x), y: Math.min(start.y, q.y), w: Math.abs(q.x - start.x), h: Math.abs(q.y - start.y) });
      else if (draft?.kind === "arrow") Object.assign(draft, { x2: q.x, y2: q.y });
      redraw();
    };
    const up = () => {
      overlay.removeEventListener("pointermove", move);
      overlay.removeEventListener("pointerup", up);
      overlay.removeEventListener("pointercancel", up);
      if (draft && size(draft) >= MIN_DRAG) shapes.push(draft);
      draft = null;
      redraw();
    };
    overlay.addEventListener("pointermove", move);
    overlay.addEventListener("pointerup", up);
    overlay.addEventListener("pointercancel", up);
  });

  function addNote(x: number, y: number): void {
    shapes.push({ kind: "note", x, y, text: "" });
    redraw();
    const inputs = notes.querySelectorAll("textarea");
    (inputs[inputs.length - 1] as HTMLTextAreaElement | undefined)?.focus();
  }

  function noteShapes(): Extract<Shape, { kind: "note" }>[] {
    return shapes.filter((s): s is Extract<Shape, { kind: "note" }> => s.kind === "note");
  }

  function redraw(): void {
    layer.replaceChildren();
    const all = draft ? [...shapes, draft] : shapes;
    let n = 0;
    for (const s of all) {
      if (s.kind === "box") layer.append(svg("rect", { x: s.x, y: s.y, width: s.w, height: s.h, rx: 3, class: "ink" }));
      else if (s.kind === "arrow") layer.append(svg("line", { x1: s.x1, y1: s.y1, x2: s.x2, y2: s.y2, class: "ink", "marker-end": "url(#fr-head)" }));
      else {
        n += 1;
        layer.append(svg("g", { class: "pin", transform: `translate(${s.x} ${s.y})` }, [svg("circle", { r: 13 }), svg("text", { "text-anchor": "middle", dy: "0.35em" }, [String(n)])]));
      }
    }
    syncNotes();
    undo.disabled = shapes.length === 0;
    clear.disabled = shapes.length === 0;
    onChange();
  }

  function syncNotes(): void {
    const list = noteShapes();
    const focused = (notes.getRootNode() as ShadowRoot).activeElement;
    const keepIndex = [...notes.querySelectorAll("textarea")].indexOf(focused as HTMLTextAreaElement);
    notes.replaceChildren(
      ...list.map((s, i) => {
        const id = `fr-note-${i + 1}`;
        const area = h("textarea", { id, rows: "2", maxlength: "2000", placeholder: "What is wrong here?" }) as HTMLTextAreaElement;
        area.value = s.text;
        area.addEventListener("input", () => { s.text = area.value; });
        const remove = h("button", { type: "button", class: "remove", "aria-label": `Remove note ${i + 1}`, title: "Remove this note" }, ["\u00d7"]);
        remove.addEventListener("click", () => {
          shapes.splice(shapes.indexOf(s), 1);
          redraw();
        });
        return h("li", {}, [h("label", { for: id }, [h("span", { class: "badge", "aria-hidden": "true" }, [String(i + 1)]), `Note ${i + 1}`]), area, remove]);
      }),
    );
    notes.hidden = list.length === 0;
    if (keepIndex >= 0) notes.querySelectorAll("textarea")[keepIndex]?.focus();
  }

  function render(): HTMLCanvasElement {
    const out = document.createElement("canvas");
    out.width = shot.width;
    out.height = shot.height;
    const ctx = out.getContext("2d")!;
    ctx.drawImage(shot, 0, 0);
    const k = shot.width / width;
    ctx.scale(k, k);
    ctx.lineWidth = 3;
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    let n = 0;
    for (const s of shapes) {
      if (s.kind === "box") {
        ctx.strokeRect(s.x, s.y, s.w, s.h);
      } else if (s.kind === "arrow") {
        const angle = Math.atan2(s.y2 - s.y1, s.x2 - s.x1);
        const head = 14;
        ctx.beginPath();
        ctx.moveTo(s.x1, s.y1);
        ctx.lineTo(s.x2 - Math.cos(angle) * head * 0.6, s.y2 - Math.sin(angle) * head * 0.6);
        ctx.stroke();
        ctx.beginPath();
        ctx.moveTo(s.x2, s.y2);
        ctx.lineTo(s.x2 - head * Math.cos(angle - 0.45), s.y2 - head * Math.sin(angle - 0.45));
        ctx.lineTo(s.x2 - head * Math.cos(angle + 0.45), s.y2 - head * Math.sin(angle + 0.45));
        ctx.closePath();
        ctx.fill();
      } else {
        n += 1;
        ctx.beginPath();
        ctx.arc(s.x, s.y, 13, 0, Math.PI * 2);
        ctx.fillStyle = INK;
        ctx.fill();
        ctx.lineWidth = 2;
        ctx.strokeStyle = "#ffffff";
        ctx.stroke();
        ctx.fillStyle = "#ffffff";
        ctx.font = "bold 14px system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
        ctx.textAlign = "center";
        ctx.textBaseline = "middle";
        ctx.fillText(String(n), s.x, s.y + 1);
        ctx.lineWidth = 3;
        ctx.strokeStyle = INK;
        ctx.fillStyle = INK;
      }
    }
    return out;
  }

  redraw();
  return {
    stage,
    toolbar,
    notes,
    shapes,
    noteTexts: () => noteShapes().map((s) => s.text.trim()),
    render,
    addNoteAtCenter: () => {
      const count = noteShapes().length;
      addNote(width / 2 + ((count * 28) % 200) - 100, height / 2 + ((count * 28) % 120) - 60);
    },
  };
}

function size(s: Shape): number {
  if (s.kind === "box") return Math.min(s.w, s.h) >= MIN_DRAG / 2 ? Math.max(s.w, s.h) : 0;
  if (s.kind === "arrow") return Math.hypot(s.x2 - s.x1, s.y2 - s.y1);
  return MIN_DRAG;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, v));
}

function icon(name: Tool): SVGElement {
  const paths: Record<Tool, SVGElement[]> = {
    box: [svg("rect", { x: 3, y: 4, width: 14, height: 12, rx: 1.5 })],
    arrow: [svg("path", { d: "M4 16 L15 5 M8 5 H15 V12" })],
    note: [svg("circle", { cx: 10, cy: 10, r: 7 }), svg("path", { d: "M10 7 V13" })],
  };
  return svg("svg", { class: "icon", viewBox: "0 0 20 20", "aria-hidden": "true" }, paths[name]);
}
