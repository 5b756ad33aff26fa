// fieldreport browser widget: <script src=".../widget.js" data-key="PUBLIC_KEY" async></script>
import { captureViewport, type Shot } from "./capture";
import { fromScript, merge, type Config } from "./config";
import { openDialog, type Kept } from "./dialog";
import { h, svg } from "./dom";
import type { RecorderHandle, RecorderOptions } from "./recorder";
import type { Sent } from "./send";
import { css } from "./styles";

interface Api {
  version: string;
  init(options?: Partial<Config>): void;
  open(): Promise<void>;
  close(): void;
  recordingId(): string | null;
}

declare global {
  interface Window {
    fieldreport?: Api;
    fieldreportConfig?: Partial<Config>;
    __fieldreportRecorder?: (opts: RecorderOptions) => RecorderHandle;
  }
}

(() => {
  if (window.fieldreport && "open" in window.fieldreport) return; // loaded twice
  const script = document.currentScript as HTMLScriptElement | null;
  let config: Config = merge(fromScript(script), window.fieldreportConfig || {});
  let host: HTMLElement | null = null;
  let shadow: ShadowRoot | null = null;
  let container: HTMLElement | null = null;
  let launcher: HTMLButtonElement | null = null;
  let dismiss: (() => void) | null = null;
  let opening = false;
  let recorder: Promise<RecorderHandle | null> | null = null;
  let recorderHandle: RecorderHandle | null = null;
  const kept: Kept = { comment: "", email: "" };

  function mount(): void {
    if (!host) {
      host = h("div", { "data-fieldreport": "", class: "rr-block" });
      shadow = host.attachShadow({ mode: "open" });
    }
    // A constructed stylesheet is not "inline style" for a Content-Security-Policy.
    let style: HTMLStyleElement | null = null;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css(config.color));
      shadow!.adoptedStyleSheets = [sheet];
    } catch {
      style = h("style", {}, [css(config.color)]);
    }
    container = h("div", { class: "root" });
    launcher = null;
    if (config.button) {
      launcher = h("button", { type: "button", class: `launcher ${config.position}`, "aria-haspopup": "dialog" }, [
        svg("svg", { viewBox: "0 0 24 24", "aria-hidden": "true" }, [
          svg("path", { d: "M8 6V5a4 4 0 0 1 8 0v1M6 10h12M6 10a6 6 0 0 0 12 0M6 10v4a6 6 0 0 0 12 0v-4M12 12v8M3 13h3M18 13h3M4 7l2.5 2M20 7l-2.5 2M4 20l2.5-2.5M20 20l-2.5-2.5" }),
        ]),
        config.label,
      ]);
      launcher.addEventListener("click", () => void open());
      container.append(launcher);
    }
    shadow!.replaceChildren(...(style ? [style] : []), container);
    if (!host.isConnected) (document.body || document.documentElement).append(host);
  }

  function loadRecorder(): Promise<RecorderHandle | null> {
    return new Promise((resolve) => {
      const options = { endpoint: config.endpoint, key: config.key, traceOrigins: config.traceOrigins, maskInputs: config.maskInputs };
      if (window.__fieldreportRecorder) {
        resolve((recorderHandle = window.__fieldreportRecorder(options)));
        return;
      }
      const tag = document.createElement("script");
      tag.src = `${config.endpoint}/widget/${__FIELDREPORT_RECORDER__}`;
      tag.async = true;
      tag.crossOrigin = "anonymous";
      tag.onload = () => resolve(window.__fieldreportRecorder ? (recorderHandle = window.__fieldreportRecorder(options)) : null);
      tag.onerror = () => {
        console.warn("fieldreport: the session recorder could not be loaded from", tag.src);
        resolve(null);
      };
      document.head.append(tag);
    });
  }

  async function recording(): Promise<string | null> {
    const handle = recorder ? await recorder : null;
    if (!handle) return null;
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), 4000));
    const id = await Promise.race([handle.sessionId(), timeout]);
    if (id) await Promise.race([handle.flush(), timeout]);
    return id;
  }

  async function open(): Promise<void> {
    if (!config.key) {
      console.error("fieldreport: no project key; add data-key=\"PUBLIC_KEY\" to the script tag or call fieldreport.init({key})");
      return;
    }
    if (opening || dismiss) return;
    opening = true;
    if (!host) mount();
    const returnFocus = (shadow?.activeElement || document.activeElement) as HTMLElement | null;
    launcher?.setAttribute("data-busy", "");
    launcher?.setAttribute("aria-busy", "true");
    let shot: Shot | null = null;
    try {
      shot = await captureViewport(host!);
    } catch (err) {
      console.warn("fieldreport: the screenshot could not be taken:", err);
    }
    launcher?.removeAttribute("data-busy");
    launcher?.removeAttribute("aria-busy");
    opening = false;
    dismiss = openDialog(shadow!, container!, config, shot, kept, {
      recording,
      onClose: () => {
        dismiss = null;
      },
      onSent: (sent: Sent) => window.dispatchEvent(new CustomEvent("fieldreport:sent", { detail: sent })),
    }, returnFocus);
  }

  function init(options: Partial<Config> = {}): void {
    config = merge(config, options);
    mount();
    if (config.record && config.key && !recorder) recorder = loadRecorder();
  }

  window.fieldreport = {
    version: __FIELDREPORT_VERSION__,
    init,
    open,
    close: () => dismiss?.(),
    recordingId: () => recorderHandle?.current() ?? null,
  };

  const start = () => {
    if (config.key) init();
    window.dispatchEvent(new CustomEvent("fieldreport:ready"));
  };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
