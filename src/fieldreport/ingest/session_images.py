"""``POST /v1/{ios,android,mobile}/images``: content-addressed, de-duplicated mobile images.

Each file part's filename is the image's hash (hex MD5, SHA-1 or SHA-256, told apart by
length). The hash is checked against the content, and only the checked, lower-cased hex
digest names the blob (``session-images/<project>/<hash>``): a filename is never a path.
An image the project already has is not stored again; its use count goes up instead, which
is what ``imagesHashList`` (the most used hashes) is ranked by.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fieldreport.ingest.auth import app_state
from fieldreport.ingest.body import BodyTooLarge, LimitedBody
from fieldreport.ingest.errors import HTTPProblem, not_found, storage_unavailable, too_large
from fieldreport.ingest.files import safe_content_type
from fieldreport.ingest.session_runtime import MOBILE
from fieldreport.ingest.sessions import verify_token
from fieldreport.ingest.shedding import shed_load
from fieldreport.state import AppState
from fieldreport.storage.blobs import BlobStoreError
from fieldreport.storage.sessions import known_image_hashes, record_image

log = logging.getLogger(__name__)

MAX_IMAGES = 1000
_HASH_RE = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{40}$|^[0-9a-fA-F]{64}$")
_ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256"}
CHUNK = 256 * 1024


@dataclass
class _Image:
    hash: str
    content_type: str
    size: int
    file: IO[bytes]


def image_key(project_id: int, digest: str) -> str:
    return f"session-images/{project_id}/{digest}"


def _check_hash(upload: UploadFile) -> _Image:
    name = upload.filename or ""
    if not _HASH_RE.match(name):
        raise HTTPProblem(
            400,
            f"an image's filename must be its hash: hex MD5, SHA-1 or SHA-256 (got {name[:80]!r})",
            code="bad_image_name",
        )
    claimed = name.lower()
    digest = hashlib.new(_ALGORITHMS[len(claimed)], usedforsecurity=False)
    fh = upload.file
    fh.seek(0)
    size = 0
    while chunk := fh.read(CHUNK):
        size += len(chunk)
        digest.update(chunk)
    fh.seek(0)
    if digest.hexdigest() != claimed:
        raise HTTPProblem(
            400, f"image {claimed} does not match its content's hash", code="hash_mismatch"
        )
    if size == 0:
        raise HTTPProblem(400, f"image {claimed} is empty", code="empty_image")
    return _Image(claimed, safe_content_type(upload.content_type), size, fh)


@shed_load("sessions.images")
async def push_images(request: Request) -> Response:
    """Upload images of a mobile session.
    ---
    summary: Push mobile session images
    description: >
      multipart/form-data with `projectID` and one file part per image whose filename is the
      image's hex MD5, SHA-1 or SHA-256. Needs the session token. Images the project already
      has are counted, not stored again.
    tags: [sessions]
    security: [{sessionToken: []}]
    parameters:
      - {name: platform, in: path, required: true,
         schema: {type: string, enum: [ios, android, mobile]}}
    requestBody:
      required: true
      content:
        multipart/form-data:
          schema:
            type: object
            required: [projectID]
            properties:
              projectID: {type: string}
    responses:
      200:
        description: All images are stored (or were already).
        content: {application/json: {schema: {$ref: '#/components/schemas/ImagesStored'}}}
      400: {$ref: '#/components/responses/Problem'}
      401: {$ref: '#/components/responses/Problem'}
      403: {$ref: '#/components/responses/Problem'}
      404: {$ref: '#/components/responses/Problem'}
      413: {$ref: '#/components/responses/Problem'}
      503: {$ref: '#/components/responses/Problem'}
      507: {$ref: '#/components/responses/Problem'}
    """
    platform = str(request.path_params["platform"])
    if platform not in MOBILE:
        raise not_found("images are part of the mobile protocol only (ios, android, mobile)")
    claims = verify_token(request, platform, late=True)
    state = app_state(request)
    limit = state.settings.session_max_images_bytes
    body = LimitedBody(request, limit)
    try:
        form = await body.request.form(max_files=MAX_IMAGES, max_fields=10)
    except BodyTooLarge as exc:
        raise too_large(limit) from exc
    except MultiPartException as exc:
        raise HTTPProblem(400, f"malformed multipart body: {exc}", code="malformed_body") from exc
    except ClientDisconnect as exc:
        raise HTTPProblem(400, "the client disconnected", code="malformed_body") from exc
    try:
        project_field = form.get("projectID")
        if not isinstance(project_field, str) or not project_field.strip():
            raise HTTPProblem(400, "`projectID` is required")
        if project_field.strip() != str(claims.project_id):
            raise HTTPProblem(403, "`projectID` is not this session's project", code="forbidden")
        uploads: list[UploadFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append(value)
            elif name != "projectID":
                raise HTTPProblem(
                    400,
                    f"unexpected field `{name[:40]}`: send `projectID` and image files "
                    "named by their hash",
                    code="bad_image_name" if name == "file" else "bad_request",
                )
        if not uploads:
            raise HTTPProblem(400, "no image files in the request", code="no_images")
        images: dict[str, _Image] = {}
        for upload in uploads:
            image = await asyncio.to_thread(_check_hash, upload)
            images.setdefault(image.hash, image)
        stored, known = await _store(state, claims.project_id, list(images.values()))
    finally:
        await form.close()
    return JSONResponse({"stored": stored, "known": known})


async def _store(state: AppState, project_id: int, images: list[_Image]) -> tuple[int, int]:
    async with state.db.read() as conn:
        known = await known_image_hashes(conn, project_id, [i.hash for i in images])
    try:
        for image in images:
            if image.hash not in known:
                await state.blobs.put_stream(image_key(project_id, image.hash), _chunks(image.file))
    except BlobStoreError as exc:
        log.error("blob store failed for session images: %s", exc)
        raise storage_unavailable(exc) from exc
    now = state.clock()
    async with state.db.write() as conn:
        for image in images:
            await record_image(
                conn,
                project_id=project_id,
                hash=image.hash,
                size=image.size,
                content_type=image.content_type,
                blob_key=image_key(project_id, image.hash),
                now=now,
            )
    return len(images) - len(known), len(known)


async def _chunks(fh: IO[bytes]) -> AsyncIterator[bytes]:
    fh.seek(0)
    while True:
        chunk = await asyncio.to_thread(fh.read, CHUNK)
        if not chunk:
            return
        yield chunk


routes = [Route("/v1/{platform}/images", push_images, methods=["POST"])]
