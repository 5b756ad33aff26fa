// Builds the widget and the recorder into src/fieldreport/web/static/ (committed, so the Python
// package needs no Node). Deterministic: the same sources and lockfile give the same bytes.
//
//   node build.mjs          build, print sizes, fail when the widget is over its budget
//   node build.mjs --check  build into a temporary directory and fail if it differs from the
//                           committed bundle (what scripts/test runs)
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const committed = join(here, "..", "src", "fieldreport", "web", "static");
const WIDGET_BUDGET_GZIP = 60 * 1024;
const pkg = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));

const common = {
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome90", "firefox90", "safari15"],
  legalComments: "eof",
  charset: "utf8",
  write: false,
  logLevel: "warning",
  define: { __FIELDREPORT_VERSION__: JSON.stringify(pkg.version) },
};

async function bundle(entry, define = {}) {
  const result = await esbuild.build({
    ...common,
    entryPoints: [join(here, "src", entry)],
    define: { ...common.define, ...define },
  });
  return result.outputFiles[0].contents;
}

const sha = (bytes) => createHash("sha256").update(bytes).digest("hex");
const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;

async function build(outDir) {
  const recorder = await bundle("recorder.ts");
  const recorderName = `recorder.${sha(recorder).slice(0, 12)}.js`;
  const widget = await bundle("widget.ts", { __FIELDREPORT_RECORDER__: JSON.stringify(recorderName) });
  const manifest = {
    version: pkg.version,
    widget: { file: "widget.js", sha256: sha(widget), bytes: widget.length, gzip: gz(widget) },
    recorder: { file: recorderName, sha256: sha(recorder), bytes: recorder.length, gzip: gz(recorder) },
  };
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(outDir)) {
    if (name.endsWith(".js") || name === "manifest.json") rmSync(join(outDir, name));
  }
  writeFileSync(join(outDir, "widget.js"), widget);
  writeFileSync(join(outDir, recorderName), recorder);
  writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

function report(manifest) {
  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  console.log(`widget.js            ${kb(manifest.widget.bytes)} (${kb(manifest.widget.gzip)} gzipped, budget ${kb(WIDGET_BUDGET_GZIP)})`);
  console.log(`${manifest.recorder.file.padEnd(20)} ${kb(manifest.recorder.bytes)} (${kb(manifest.recorder.gzip)} gzipped, loaded only with data-record="true")`);
  if (manifest.widget.gzip > WIDGET_BUDGET_GZIP) {
    console.error("error: widget.js is over its gzipped size budget");
    process.exit(1);
  }
}

function listing(dir) {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n))]));
}

if (process.argv.includes("--check")) {
  const tmp = mkdtempSync(join(tmpdir(), "fieldreport-web-"));
  try {
    const manifest = await build(tmp);
    report(manifest);
    const fresh = listing(tmp);
    const have = listing(committed);
    const names = new Set([...Object.keys(fresh), ...Object.keys(have)]);
    const differ = [...names].filter((n) => !fresh[n] || !have[n] || !fresh[n].equals(have[n]));
    if (differ.length) {
      console.error(`error: the committed bundle differs from a fresh build: ${differ.join(", ")}`);
      console.error("run `npm ci && npm run build` in web/ and commit src/fieldreport/web/static/");
      process.exit(1);
    }
    console.log("the committed bundle matches a fresh build");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
} else {
  report(await build(committed));
}
