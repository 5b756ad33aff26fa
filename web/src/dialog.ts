// The report dialog: screenshot editor, comment, email, send. Modal, with a focus trap.
import { createEditor, type Editor } from "./annotate";
import type { Config } from "./config";
import { h } from "./dom";
import { sendReport, SendError, type Sent } from "./send";
import type { Shot } from "./capture";

export interface DialogHooks {
  recording(): Promise<string | null>;
  onClose(): void;
  onSent(sent: Sent): void;
}

export interface Kept {
  comment: string;
  email: string;
}

const FOCUSABLE = 'button:not([disabled]), textarea, input, [tabindex]:not([tabindex="-1"])';

export function openDialog(root: ShadowRoot, container: HTMLElement, config: Config, shot: Shot | null, kept: Kept, hooks: DialogHooks, returnFocus: HTMLElement | null): () => void {
  const titleId = "fr-title";
  const close = h("button", { type: "button", class: "close", "aria-label": "Close dialog", title: "Close (Esc)" }, ["\u00d7"]);
  const comment = h("textarea", { id: "fr-comment", name: "comment", rows: "5", maxlength: "20000", required: true, placeholder: "What happened? What did you expect instead?" });
  comment.value = kept.comment;
  const email = h("input", { id: "fr-email", name: "email", type: "email", autocomplete: "email", maxlength: "320", placeholder: "you@example.com" });
  email.value = kept.email;
  const status = h("p", { class: "status", role: "status", "aria-live": "polite", hidden: true });
  const send = h("button", { type: "submit", class: "primary" }, ["Send report"]);
  const cancel = h("button", { type: "button", class: "secondary" }, ["Cancel"]);
  let editor: Editor | null = null;

  const main = h("div", { class: "main" });
  const addNote = h("button", { type: "button", class: "add-note" }, ["+ Add a note"]);
  if (shot) {
    editor = createEditor(shot.canvas, shot.width, shot.height, () => undefined);
    main.append(editor.toolbar, editor.stage);
    addNote.addEventListener("click", () => editor?.addNoteAtCenter());
  } else {
    main.append(h("div", { class: "loading" }, ["The screenshot could not be taken; you can still send your comment."]));
    addNote.hidden = true;
  }

  const form = h("form", { class: "side", novalidate: true }, [
    h("div", { class: "field" }, [h("label", { for: "fr-comment" }, ["Describe the problem"]), comment]),
    ...(editor ? [editor.notes, addNote] : []),
    ...(config.email
      ? [h("div", { class: "field" }, [h("label", { for: "fr-email" }, ["Your email ", h("span", { class: "hint" }, ["(optional, for follow-up)"])]), email])]
      : []),
    status,
    h("p", { class: "privacy" }, [shot ? "The screenshot, your notes and browser details are sent with your report." : "Your comment and browser details are sent with your report."]),
    h("div", { class: "actions" }, [cancel, send]),
  ]);

  const dialog = h("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": titleId }, [
    h("div", { class: "head" }, [
      h("div", {}, [h("h2", { id: titleId }, [config.label]), h("p", {}, [shot ? "Mark what is wrong: draw boxes and arrows, or place numbered notes." : "Tell us what went wrong."])]),
      close,
    ]),
    h("div", { class: "body" }, [main, form]),
  ]);
  const backdrop = h("div", { class: "backdrop" }, [dialog]);
  container.append(backdrop);

  function show(kind: "error" | "ok" | "info", text: string): void {
    status.className = `status ${kind}`;
    status.setAttribute("role", kind === "error" ? "alert" : "status");
    status.textContent = text;
    status.hidden = false;
  }

  function keep(): void {
    kept.comment = comment.value;
    kept.email = email.value;
  }

  let closed = false;
  function dismiss(): void {
    if (closed) return;
    closed = true;
    keep();
    backdrop.remove();
    document.removeEventListener("keydown", onKey, true);
    if (returnFocus?.isConnected) returnFocus.focus();
    hooks.onClose();
  }

  function onKey(ev: KeyboardEvent): void {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      dismiss();
    } else if (ev.key === "Tab") {
      const items = [...dialog.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => el.offsetParent !== null);
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = root.activeElement as HTMLElement | null;
      const inside = active !== null && dialog.contains(active);
      if (ev.shiftKey && (active === first || !inside)) {
        ev.preventDefault();
        last.focus();
      } else if (!ev.shiftKey && (active === last || !inside)) {
        ev.preventDefault();
        first.focus();
      }
    }
  }
  document.addEventListener("keydown", onKey, true);
  close.addEventListener("click", dismiss);
  cancel.addEventListener("click", dismiss);
  backdrop.addEventListener("mousedown", (ev) => { if (ev.target === backdrop) dismiss(); });
  comment.addEventListener("input", keep);
  email.addEventListener("input", keep);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    keep();
    const text = comment.value.trim();
    const notes = editor ? editor.noteTexts() : [];
    const empty = notes.findIndex((n) => !n);
    if (empty >= 0) {
      show("error", `Note ${empty + 1} is empty: write what is wrong there, or remove it.`);
      root.getElementById(`fr-note-${empty + 1}`)?.focus();
      return;
    }
    if (!text && !notes.length) {
      show("error", "Please describe the problem (or add a note) before sending.");
      comment.focus();
      return;
    }
    if (email.value.trim() && !email.checkValidity()) {
      show("error", "This email address does not look right. Fix it or leave the field empty.");
      email.focus();
      return;
    }
    send.disabled = true;
    send.textContent = "Sending\u2026";
    show("info", "Sending your report\u2026");
    try {
      const png = editor ? await new Promise<Blob | null>((resolve) => editor!.render().toBlob(resolve, "image/png")) : null;
      const firstLine = (text || notes[0]).split("\n")[0].slice(0, 120);
      const sent = await sendReport(config.endpoint, config.key, {
        subject: `${config.subject}: ${firstLine}`,
        comment: text,
        email: config.email ? email.value.trim() : "",
        notes,
        screenshot: png,
        recording: await hooks.recording(),
      });
      kept.comment = "";
      kept.email = email.value;
      const done = h("button", { type: "button", class: "primary" }, ["Close"]);
      done.addEventListener("click", dismiss);
      const message = h("div", { class: "done", role: "status" }, [
        h("div", { class: "check", "aria-hidden": "true" }, ["\u2713"]),
        h("h3", {}, ["Thank you! Your report was sent."]),
        h("p", {}, [`Ticket #${sent.ticketnr}. The team will look into it${email.value.trim() ? " and may contact you by email" : ""}.`]),
        done,
      ]);
      dialog.classList.add("small");
      dialog.querySelector(".head p")?.remove();
      dialog.replaceChildren(dialog.firstElementChild!, message);
      done.focus();
      hooks.onSent(sent);
    } catch (err) {
      show("error", err instanceof SendError ? err.message : `The report could not be sent (${String(err)}). Your text is kept: try again.`);
      send.disabled = false;
      send.textContent = "Try again";
      send.focus();
    }
  });

  (comment as HTMLElement).focus();
  return dismiss;
}
