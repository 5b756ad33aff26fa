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
  const sx = window.scrollX;
  const sy = window.scrollY;
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
    // The root keeps the viewport's size (so the layout is the one the user sees); its
    // overflowing content is shifted so the visible part lands in the picture.
    style: {
      transform: `translate(${-sx}px, ${-sy}px)`,
      transformOrigin: "0 0",
      overflow: "visible",
    },
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
