// Sending a report to POST /api/v1/reports as multipart/form-data. The public key travels as
// the form field `key` (not a header), so the browser sends a "simple" request: no preflight.

export interface Draft {
  subject: string;
  comment: string;
  email: string;
  notes: string[];
  screenshot: Blob | null;
  recording: string | null;
}

export interface Sent {
  reportid: string;
  ticketnr: number;
  ticketurl: string;
}

export class SendError extends Error {}

function browserInfo(): Record<string, unknown> {
  const nav = navigator as Navigator & { userAgentData?: { platform?: string; mobile?: boolean } };
  return {
    url: location.href,
    title: document.title,
    viewport: { width: window.innerWidth, height: window.innerHeight, devicePixelRatio: window.devicePixelRatio },
    screen: { width: screen.width, height: screen.height },
    scroll: { x: Math.round(window.scrollX), y: Math.round(window.scrollY) },
    language: navigator.language,
    languages: navigator.languages,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    platform: nav.userAgentData?.platform || navigator.platform,
    mobile: nav.userAgentData?.mobile,
    online: navigator.onLine,
    cookiesEnabled: navigator.cookieEnabled,
    widget: __FIELDREPORT_VERSION__,
  };
}

export async function sendReport(endpoint: string, key: string, draft: Draft): Promise<Sent> {
  const form = new FormData();
  form.append("key", key);
  form.append("subject", draft.subject);
  if (draft.comment) form.append("sendercomment", draft.comment);
  if (draft.email) form.append("senderemail", draft.email);
  for (const note of draft.notes) form.append("notelist[]", note);
  form.append("referer", location.href.slice(0, 8192));
  form.append("browser", navigator.userAgent.slice(0, 2000));
  form.append("additionalinfo", JSON.stringify(browserInfo()));
  if (draft.recording) form.append("recording", draft.recording);
  if (draft.screenshot) form.append("file", draft.screenshot, "screenshot.png");
  let response: Response;
  try {
    response = await fetch(`${endpoint}/api/v1/reports`, { method: "POST", body: form, mode: "cors", credentials: "omit" });
  } catch {
    throw new SendError(
      "The report could not be sent: the server could not be reached, or it does not accept reports from this site. Your text is kept: check your connection and try again.",
    );
  }
  let body: Record<string, unknown> = {};
  try {
    body = await response.json();
  } catch {
    /* an error page that is not JSON */
  }
  if (!response.ok) {
    const why = typeof body.error === "string" ? body.error : `the server answered ${response.status}`;
    throw new SendError(`The report could not be sent (${why}). Your text is kept: try again.`);
  }
  return body as unknown as Sent;
}
