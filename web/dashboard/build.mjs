// Builds the replay bundle into the Python package (committed, so installing fieldreport
// needs no Node): src/fieldreport/dashboard/static/replay.js and replay.css.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.env.REPLAY_OUT_DIR || path.resolve(here, "../../src/fieldreport/dashboard/static");

await build({
  entryPoints: { replay: path.join(here, "src/replay.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir: out,
  legalComments: "linked",
  logLevel: "info",
});
