"""``fieldreport receive``: our reference receiver, as the seeds offer a PHP one.

It accepts all three HTTP formats (multipart, json, xml), checks the token (and the Standard
Webhooks signature when given a secret), and writes each report into its own directory,
atomically: everything goes into a temporary directory first, which is renamed into place,
so a reader never sees half a report. A report delivered twice (at-least-once delivery)
keeps its first directory and is answered 200 again. A bad token or signature gets 500 with
``no access``, exactly like the seed's sample script.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fieldreport.delivery.formats.xml import NAMESPACE
from fieldreport.delivery.loader import safe_filename
from fieldreport.delivery.signing import verify_webhook

MAX_BODY = 200 * 1024 * 1024
FIELDS = (
    "reportid",
    "ticketurl",
    "ticketnr",
    "subject",
    "browser",
    "ipaddress",
    "referer",
    "senderemail",
    "sendercomment",
    "additionalinfo",
)


class NoAccess(Exception):
    pass


class BadPush(Exception):
    pass


@dataclass
class Incoming:
    format: str
    fields: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)  # name in the directory -> bytes


@dataclass
class ReceiverConfig:
    out: Path
    token: str | None = None
    secret: str | None = None


def _token_ok(config: ReceiverConfig, given: Any) -> bool:
    if config.token is None:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.encode(), config.token.encode())


def _signature_ok(config: ReceiverConfig, request: Request, body: bytes) -> bool:
    if config.secret is None:
        return True
    headers = {k.lower(): v for k, v in request.headers.items()}
    return verify_webhook(config.secret, headers, body)


async def _multipart(config: ReceiverConfig, request: Request) -> Incoming:
    form = await request.form(max_files=100, max_fields=10_000, max_part_size=16 * 1024 * 1024)
    if not _token_ok(config, form.get("token")):
        raise NoAccess
    fields: dict[str, Any] = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    fields.pop("token", None)
    fields.pop("notelist[]", None)
    fields["notelist"] = [v for v in form.getlist("notelist[]") if isinstance(v, str)]
    files: dict[str, bytes] = {}
    shot = form.get("file")
    if isinstance(shot, UploadFile):
        files[safe_filename(shot.filename or "", "screenshot.png")] = await shot.read()
    log = form.get("backendlog")
    if isinstance(log, UploadFile):
        files["backendlog.json"] = await log.read()
    await form.close()
    return Incoming("multipart", fields, files)


async def _fetch(url: str) -> bytes:
    """Download a file a JSON push links to (only after its token/signature checked out)."""
    if not url.startswith(("https://", "http://")):
        raise BadPush("file links must be http(s)")
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, allow_redirects=False) as resp,
    ):
        if resp.status != 200:
            raise BadPush(f"could not download {url.split('?')[0]}: HTTP {resp.status}")
        if (resp.content_length or 0) > MAX_BODY:
            raise BadPush("linked file too large")
        return await resp.read()


async def _json(config: ReceiverConfig, request: Request, body: bytes) -> Incoming:
    if not _signature_ok(config, request, body):
        raise NoAccess
    try:
        doc = json.loads(body)
        data = doc["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadPush("not a fieldreport JSON push") from exc
    if not _token_ok(config, data.get("token")):
        raise NoAccess
    files: dict[str, bytes] = {}
    shots = [("screenshot", data.get("screenshot"))] + [
        (f"attachment-{i + 1}", a) for i, a in enumerate(data.get("attachments") or [])
    ]
    for _role, item in shots:
        if not isinstance(item, dict):
            continue
        name = safe_filename(str(item.get("filename", "")), "file.bin")
        if "data" in item:
            files[name] = base64.b64decode(item["data"])
        elif "url" in item:
            files[name] = await _fetch(str(item["url"]))
    if data.get("backend_events"):
        files["backendlog.json"] = json.dumps(data["backend_events"], ensure_ascii=False).encode()
    fields = {k: v for k, v in data.items() if k not in ("token", "screenshot", "attachments")}
    fields.pop("backend_events", None)
    return Incoming("json", fields, files)


def _xml(config: ReceiverConfig, request: Request, body: bytes) -> Incoming:
    if not _signature_ok(config, request, body):
        raise NoAccess
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise BadPush(f"not well-formed XML: {exc}") from exc
    ns = {"r": NAMESPACE}
    if root.tag != f"{{{NAMESPACE}}}report":
        raise BadPush("not a fieldreport XML push")
    if not _token_ok(config, root.findtext("r:token", namespaces=ns)):
        raise NoAccess
    fields: dict[str, Any] = {}
    for name in (*FIELDS, "project", "created", "recording"):
        value = root.findtext(f"r:{name}", namespaces=ns)
        if value is not None:
            fields[name] = value
    fields["notelist"] = [n.text or "" for n in root.findall("r:notelist/r:note", ns)]
    files: dict[str, bytes] = {}
    try:
        shot = root.find("r:screenshot", ns)
        if shot is not None:
            name = safe_filename(shot.get("filename", ""), "screenshot.png")
            files[name] = base64.b64decode(shot.text or "")
        document = root.find("r:document", ns)
        if document is not None:
            files["report.pdf"] = base64.b64decode(document.text or "")
    except (binascii.Error, ValueError) as exc:
        raise BadPush("a file is not valid base64") from exc
    events = [json.loads(e.text or "null") for e in root.findall("r:backendevents/r:event", ns)]
    if events:
        files["backendlog.json"] = json.dumps(events, ensure_ascii=False).encode()
    return Incoming("xml", fields, files)


def store(out: Path, incoming: Incoming) -> tuple[Path, bool]:
    """Write the report into ``out/<reportid>`` atomically; (path, False) when it existed."""
    raw_id = str(incoming.fields.get("reportid", ""))
    try:
        report_id = str(uuid.UUID(raw_id))
    except ValueError as exc:
        raise BadPush("the push has no valid reportid") from exc
    final = out / report_id
    if final.exists():
        return final, False
    tmp = out / f".tmp-{report_id}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        fields = dict(incoming.fields, format=incoming.format)
        (tmp / "fields.json").write_text(json.dumps(fields, indent=2, ensure_ascii=False))
        for name, data in incoming.files.items():
            if name == "fields.json":
                name = "file-fields.json"
            (tmp / name).write_bytes(data)
        for path in tmp.iterdir():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        try:
            os.rename(tmp, final)
        except OSError:
            if final.exists():  # a concurrent duplicate won the race
                return final, False
            raise
        dir_fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def receiver_app(config: ReceiverConfig) -> Starlette:
    config.out.mkdir(parents=True, exist_ok=True)

    async def receive(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "multipart/form-data":
                incoming = await _multipart(config, request)
            else:
                body = await request.body()
                if len(body) > MAX_BODY:
                    return PlainTextResponse("too large", status_code=413)
                if content_type == "application/json":
                    incoming = await _json(config, request, body)
                elif content_type in ("application/xml", "text/xml"):
                    incoming = _xml(config, request, body)
                else:
                    return PlainTextResponse("send multipart, json or xml", status_code=415)
            _, new = await asyncio.to_thread(store, config.out, incoming)
        except NoAccess:
            return PlainTextResponse("no access", status_code=500)
        except BadPush as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return PlainTextResponse("ok" if new else "ok (already received)")

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
