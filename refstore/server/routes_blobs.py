"""Routes for blobs: stored manifests and copied files, by sha256.

Uploads go to a project and prove possession: the bytes are hashed on the
way in and must match the digest in the path, and the project then holds
the blob. The service answers which digests a project still lacks, so a
client uploads each file once per project. Downloads name only the digest
and are allowed when some project the reader may read holds it; a blob held
only by private projects is as invisible as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
from aiohttp import web

from refstore.blobs import BlobStore
from refstore.server.errors import ApiError
from refstore.server.routes_versions import PROJECT_PARAMS
from refstore.server.routing import Call, InProject, Param, ReadsBlob, Route
from refstore.server.schema import Array, Field, Obj
from refstore.server.specs import DIGEST, envelope

__all__ = ["ROUTES"]

_DIGEST = Param("digest", DIGEST, "path")
_MISSING_BODY = Obj({"digests": Field(Array(DIGEST, max_items=10_000))})
# Content-addressed bytes never change; a cached copy is good for ever.
_IMMUTABLE = "private, max-age=31536000, immutable"


async def missing_blobs(call: Call) -> Any:
    digests = call.body["digests"]
    missing = await call.run(call.catalog.missing_blobs, call.project, digests)
    return {"missing": missing}


async def upload_blob(call: Call) -> web.StreamResponse:
    digest = call.params["digest"]
    limit = call.service.config.max_blob
    length = call.request.content_length
    if length is not None and length > limit:
        raise ApiError(413, "too_large", f"blobs are limited to {limit} bytes here")
    loop = asyncio.get_running_loop()
    size = await loop.run_in_executor(
        call.service.transfers,
        _store,
        call.catalog.blobs,
        call.request.content,
        loop,
        digest,
        limit,
    )
    await call.run(call.catalog.add_project_blobs, call.project, [digest])
    return web.json_response({"digest": digest, "size": size}, status=201)


def _store(
    blobs: BlobStore,
    content: aiohttp.StreamReader,
    loop: asyncio.AbstractEventLoop,
    digest: str,
    limit: int,
) -> int:
    """Store the request body as the blob ``digest``; runs on a transfer thread.

    The body is pulled from the event loop chunk by chunk, so the loop keeps
    serving while a slow client uploads. Raising inside the writer's block
    discards the temporary file: nothing is stored under a wrong name.
    """
    hasher = hashlib.sha256()
    with blobs.writer() as blob:
        while chunk := _next_chunk(content, loop):
            hasher.update(chunk)
            blob.write(chunk)
            if blob.size > limit:
                raise ApiError(413, "too_large", f"blobs are limited to {limit} bytes")
        if hasher.hexdigest() != digest:
            raise ApiError(
                400,
                "digest_mismatch",
                f"the uploaded bytes hash to {hasher.hexdigest()}, not {digest}",
            )
    return blob.size


def _next_chunk(
    content: aiohttp.StreamReader, loop: asyncio.AbstractEventLoop
) -> bytes:
    try:
        return asyncio.run_coroutine_threadsafe(content.readany(), loop).result()
    except (ConnectionError, aiohttp.ClientError) as exc:
        detail = f"the upload broke off: {exc}"
        raise ApiError(400, "incomplete_upload", detail) from exc


async def download_blob(call: Call) -> web.StreamResponse:
    path = call.catalog.blobs.path(call.params["digest"])
    if not path.is_file():
        raise ApiError(404, "not_found", "the blob is no longer stored")
    headers = {"Content-Type": "application/octet-stream", "Cache-Control": _IMMUTABLE}
    return web.FileResponse(path, headers=headers)


_PROJECT_BLOB = "/api/v1/projects/{entity}/{project}/blobs"

ROUTES = [
    Route(
        "POST",
        _PROJECT_BLOB + "/missing",
        "missing_blobs",
        "Which of these blobs the project still lacks (upload only those)",
        "blobs",
        missing_blobs,
        (InProject("write"),),
        PROJECT_PARAMS,
        body=_MISSING_BODY,
        response=envelope(missing={"type": "array", "items": DIGEST.schema()}),
    ),
    Route(
        "PUT",
        _PROJECT_BLOB + "/{digest}",
        "upload_blob",
        "Upload a blob to a project; its sha256 must match the path",
        "blobs",
        upload_blob,
        (InProject("write"),),
        (*PROJECT_PARAMS, _DIGEST),
        upload=True,
        status=201,
        response=envelope(digest=DIGEST.schema(), size={"type": "integer"}),
    ),
    Route(
        "GET",
        "/api/v1/blobs/{digest}",
        "download_blob",
        "A blob held by a project you may read, streamed",
        "blobs",
        download_blob,
        (ReadsBlob(),),
        (_DIGEST,),
        download=True,
    ),
    Route(
        "HEAD",
        "/api/v1/blobs/{digest}",
        "has_blob",
        "Whether a blob is held by a project you may read",
        "blobs",
        download_blob,
        (ReadsBlob(),),
        (_DIGEST,),
        download=True,
    ),
]
