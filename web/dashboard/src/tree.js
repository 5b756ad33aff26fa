// JSON as a collapsible tree of <details>, built with DOM calls and textContent only
// (the same look as the server-rendered trees).

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

function scalar(value) {
  if (value === null || value === undefined) return span("j-null", "null");
  if (typeof value === "boolean") return span("j-bool", String(value));
  if (typeof value === "number") return span("j-num", String(value));
  return span("j-str", JSON.stringify(String(value)));
}

function node(key, value, depth) {
  const li = document.createElement("li");
  const label = key === null ? null : span("j-key", typeof key === "string" ? JSON.stringify(key) : String(key));
  const composite = value !== null && typeof value === "object";
  const size = composite ? (Array.isArray(value) ? value.length : Object.keys(value).length) : 0;
  if (!composite || size === 0 || depth > 40) {
    li.className = "j-leaf";
    if (label) li.append(label, ": ");
    li.append(composite ? span("j-sum", depth > 40 ? JSON.stringify(value).slice(0, 2000) : Array.isArray(value) ? "[]" : "{}") : scalar(value));
    return li;
  }
  const details = document.createElement("details");
  if (depth < 2) details.open = true;
  const summary = document.createElement("summary");
  if (label) summary.append(label, ": ");
  const kind = Array.isArray(value) ? `[…] ${size} item${size === 1 ? "" : "s"}` : `{…} ${size} key${size === 1 ? "" : "s"}`;
  summary.append(span("j-sum", kind));
  details.append(summary);
  const ul = document.createElement("ul");
  const items = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [k, v] of items) ul.append(node(k, v, depth + 1));
  details.append(ul);
  li.append(details);
  return li;
}

export function jsonTree(value) {
  const ul = document.createElement("ul");
  ul.className = "jsontree";
  if (value !== null && typeof value === "object") ul.append(node(null, value, 0));
  else ul.append(node(null, value, 0));
  return ul;
}
