"""``GET /widget.js`` and its versioned chunks under ``/widget/``.

``/widget.js`` is the stable URL of the script tag: cached for a few minutes and revalidated with
its ETag, so a server upgrade reaches every page quickly. ``/widget/widget.<hash>.js`` (for teams
that pin a version) and ``/widget/recorder.<hash>.js`` (loaded by the widget) are immutable.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fieldreport.ingest.errors import HTTPProblem
from fieldreport.web.bundle import Asset, load_bundle

_OLD_RECORDER = re.compile(r"^recorder\.[0-9a-f]{12}\.js$")
_OLD_WIDGET = re.compile(r"^widget\.[0-9a-f]{12}\.js$")
# Relative locations (they work behind a path prefix); CORS so crossorigin scripts follow them.
_REDIRECT_HEADERS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-cache"}
STABLE_CACHE = "public, max-age=300, stale-while-revalidate=3600"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match", "")
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _serve(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {
        "Cache-Control": cache_control,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request, asset.etag):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


async def widget_js(request: Request) -> Response:
    """The browser widget (one script tag adds it to a page).
    ---
    summary: The browser widget script
    description: >
      `<script src="https://YOUR-SERVER/widget.js" data-key="PUBLIC_KEY" async></script>`.
      Cached for 5 minutes and revalidated by ETag.
    tags: [widget]
    responses:
      200: {description: "JavaScript."}
      304: {description: "Not modified (If-None-Match)."}
    """
    return _serve(request, load_bundle().widget, STABLE_CACHE)


async def widget_chunk(request: Request) -> Response:
    """A versioned, immutable file of the widget bundle.
    ---
    summary: Versioned widget files
    description: >
      `widget.<hash>.js` (the widget pinned to one build) and `recorder.<hash>.js` (the session
      recorder, loaded by the widget when `data-record="true"`). Cached for a year. Another
      build's name (a page loaded before an upgrade) is redirected to this build's file.
    tags: [widget]
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "JavaScript."}
      302: {description: "Another build's file: this build's equivalent."}
      404: {$ref: '#/components/responses/Problem'}
    """
    bundle = load_bundle()
    name = request.path_params["name"]
    asset = bundle.by_name(name)
    if asset is not None:
        return _serve(request, asset, IMMUTABLE_CACHE)
    # Another build's file (a page still running the widget from before an upgrade): answer
    # with this build's instead of breaking it. Temporary redirects, never cached for long.
    if _OLD_RECORDER.match(name):
        return RedirectResponse(bundle.recorder.name, 302, headers=_REDIRECT_HEADERS)

    if _OLD_WIDGET.match(name):
        return RedirectResponse("../widget.js", 302, headers=_REDIRECT_HEADERS)
    raise HTTPProblem(404, "no such widget file", code="not_found")


routes = [
    Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
    Route("/widget/{name}", widget_chunk, methods=["GET", "HEAD"]),
]
