// Screenshot of the visible part of the page, without the widget itself.
import { domToCanvas, type Options } from "modern-screenshot";

export interface Shot {
  canvas: HTMLCanvasElement;
  /** CSS pixels of the captured viewport. */
  width: number;
  height: number;
}

const MAX_PIXELS = 16_000_000;

export async function captureViewport(exclude: Element): Promise<Shot> {
  const root = document.documentElement;
  const width = window.innerWidth;
  const height = window.innerHeight;
  const scale = Math.min(window.devicePixelRatio || 1, 2, Math.sqrt(MAX_PIXELS / (width * height)));
  const bodyStyle = getComputedStyle(document.body);
  const rootStyle = getComputedStyle(root);
  const background =
    rootStyle.backgroundColor !== "rgba(0, 0, 0, 0)" ? rootStyle.backgroundColor
    : bodyStyle.backgroundColor !== "rgba(0, 0, 0, 0)" ? bodyStyle.backgroundColor
    : "#ffffff";
  const options: Options = {
    width,
    height,
    scale,
    backgroundColor: background,
    // The root keeps the viewport's size (so the layout is the one the user sees); the library
    // shifts every scrolled element's content (the page itself and inner panes) by its scroll
    // offsets, so the picture shows what is on the screen.
    features: { restoreScrollPosition: true },
    filter: (node) => node !== exclude,
    timeout: 8000,
    fetch: { requestInit: { cache: "force-cache" } },
  };
  let canvas: HTMLCanvasElement;
  try {
    canvas = await domToCanvas(root, options);
  } catch (err) {
    // Embedding web fonts needs a scratch <style>, which a strict Content-Security-Policy
    // (style-src without 'unsafe-inline') refuses: take the picture with fallback fonts.
    console.warn("fieldreport: retrying the screenshot without embedded fonts:", err);
    canvas = await domToCanvas(root, { ...options, font: false });
  }
  return { canvas, width, height };
}
