"""``/widget.js`` and ``/widget/{name}``: the committed bundle, cached and versioned."""

from __future__ import annotations

import gzip
import hashlib
import json

import httpx

from fieldreport.web.bundle import STATIC, load_bundle

WIDGET_BUDGET_GZIP = 60 * 1024


def test_committed_bundle_is_consistent_and_within_budget() -> None:
    manifest = json.loads((STATIC / "manifest.json").read_text())
    widget = (STATIC / "widget.js").read_bytes()
    recorder = (STATIC / manifest["recorder"]["file"]).read_bytes()
    assert hashlib.sha256(widget).hexdigest() == manifest["widget"]["sha256"]
    assert hashlib.sha256(recorder).hexdigest() == manifest["recorder"]["sha256"]
    assert manifest["recorder"]["file"] == f"recorder.{manifest['recorder']['sha256'][:12]}.js"
    # The widget loads exactly this recorder build, and does not contain rrweb itself.
    assert manifest["recorder"]["file"].encode() in widget
    assert b"rrweb" not in widget and b"rrweb" in recorder
    assert {p.name for p in STATIC.iterdir()} == {
        "widget.js",
        "manifest.json",
        manifest["recorder"]["file"],
    }
    size = len(gzip.compress(widget, compresslevel=9))
    print(f"\nwidget.js: {len(widget) / 1024:.1f} KB, {size / 1024:.1f} KB gzipped (budget 60 KB)")
    assert size <= WIDGET_BUDGET_GZIP


async def test_widget_js_is_cacheable(client: httpx.AsyncClient) -> None:
    bundle = load_bundle()
    resp = await client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200
    assert resp.content == bundle.widget.body
    assert resp.headers["content-type"] == "text/javascript; charset=utf-8"
    assert resp.headers["cache-control"].startswith("public, max-age=300")
    assert resp.headers["access-control-allow-origin"] == "*"
    etag = resp.headers["etag"]
    assert etag == f'"{hashlib.sha256(bundle.widget.body).hexdigest()[:32]}"'

    again = await client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    changed = await client.get("/widget.js", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200

    zipped = await client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == bundle.widget.body  # httpx inflates it
    assert int(zipped.headers["content-length"]) == len(bundle.widget.gzipped)

    head = await client.head("/widget.js", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(bundle.widget.body)


async def test_versioned_files_are_immutable(client: httpx.AsyncClient) -> None:
    bundle = load_bundle()
    for name, body in [
        (bundle.recorder.name, bundle.recorder.body),
        (bundle.versioned_widget_name, bundle.widget.body),
    ]:
        resp = await client.get(f"/widget/{name}")
        assert resp.status_code == 200, name
        assert resp.content == body
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    # A page still running the previous build asks for its files: it gets this build's.
    old_recorder = await client.get("/widget/recorder.000000000000.js")
    assert old_recorder.status_code == 302
    assert old_recorder.headers["location"] == bundle.recorder.name  # relative to /widget/
    assert old_recorder.headers["access-control-allow-origin"] == "*"
    old_widget = await client.get("/widget/widget.000000000000.js")
    assert old_widget.status_code == 302 and old_widget.headers["location"] == "../widget.js"
    for name in ["recorder.js", "manifest.json", "widget.js", "..%2Fbundle.py", "x.py"]:
        resp = await client.get(f"/widget/{name}")
        assert resp.status_code == 404, name
