"""The search service (FastAPI): search by text or by an uploaded file of any registered media modality (a
picture, a sound, ...), item metadata, previews (drawn by each item's modality), media playback, health, and
the web page at `/`. Files are only ever served for indexed items, looked up by id, and only while they still
match what was indexed (search/files.py); bad input is answered 4xx with a one-line JSON reason, and a full
decode pool 503 with Retry-After. Uploads are decoded in a bounded pool and each tower embeds its queued
queries in micro-batches on its own thread (search/scheduler.py), so text queries do not wait for uploads.
With a generator (the index's checkpoint also holds a decoder), uploads and indexed items are captioned on a
worker of their own (search/captions.py). Responses carry paths relative to the indexed folder, never a server
path."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import omnibind.modalities as registry
from omnibind.errors import InputError, UploadError
from omnibind.runtime import runtime_of
from omnibind.search.captions import (
    DEFAULT_PROMPT,
    DEFAULT_TOKENS,
    MAX_BEAMS,
    MAX_PROMPT,
    MAX_TOKENS,
    Captioner,
    CaptionSettings,
    check_prompt,
)
from omnibind.search.files import FileGuard, FileResponse, byte_range, relative_path
from omnibind.search.limits import BODY_IDLE_SECONDS, BodyLimit
from omnibind.search.query import Searcher, one_of
from omnibind.search.scheduler import DECODE_QUEUE, DECODE_WORKERS, BusyError, DecodePool, TowerScheduler
from omnibind.search.schemas import (
    DEFAULT_RESULTS,
    MAX_DEPTH,
    MAX_RESULTS,
    CaptionResponse,
    Health,
    Item,
    MediaModality,
    QueryEcho,
    Result,
    SearchResponse,
    TextQuery,
    check_depth,
    error_responses,
)
from omnibind.search.store import MAX_ITEM_ID, ItemRecord
from omnibind.search.uploads import MAX_UPLOAD_BYTES, accepted_types, noun, upload_modality

MULTIPART_OVERHEAD = 64 * 1024
FORM_INT = re.compile(r"[0-9]{1,6}")  # ASCII digits only: int() also reads "٥", "²" fails, 5000 digits is slow
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ITEM_ID, description="Item id, as returned by /search.")]
SEARCH_FIELDS = ("k", "offset", "modality")
CAPTION_FIELDS = ("prompt", "max_tokens", "beams")


def search_body() -> dict[str, Any]:
    """The OpenAPI request body of POST /search, with the registered media modalities as the filter's enum."""
    media = registry.media()
    return {
        "required": True,
        "content": {
            "application/json": {"schema": TextQuery.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": f"The query: {one_of(noun(m) for m in media)}."},
                        "k": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": DEFAULT_RESULTS},
                        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH - 1, "default": 0,
                                   "description": f"Results to skip; offset + k is at most {MAX_DEPTH}."},
                        "modality": {"type": "string", "enum": [m.name for m in media],
                                     "description": "Only return items of this modality."},
                    },
                    "additionalProperties": False,
                }
            },
        },
    }


def caption_body() -> dict[str, Any]:
    """The OpenAPI request body of POST /caption: a picture or sound and the decoding settings."""
    media = registry.media()
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": f"What to caption: {one_of(noun(m) for m in media)} (/health's "
                                                "caption_modalities)."},
                        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT,
                                   "default": DEFAULT_PROMPT, "description": "What the decoder continues."},
                        "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS,
                                       "default": DEFAULT_TOKENS, "description": "The most tokens to generate."},
                        "beams": {"type": "integer", "minimum": 1, "maximum": MAX_BEAMS, "default": 1,
                                  "description": "Beam-search width (1: greedy)."},
                    },
                    "additionalProperties": False,
                }
            },
        },
    }


def item_links(item_id: str, own: str = "") -> dict[str, Any]:
    """OpenAPI links from an answer that names an item (`item_id`, a runtime expression) to the operations
    on it, so that clients and stateful fuzzers can follow them."""
    operations = {"item": "GetItem", "thumbnail": "GetThumbnail", "media": "GetMedia", "media_headers": "HeadMedia",
                  "item_caption": "GetCaption"}
    return {name: {"operationId": operation, "parameters": {"item_id": item_id}}
            for operation, name in operations.items() if operation != own}


def static_folder() -> Path:
    """The web page's files (package data of omnibind.search)."""
    return Path(str(resources.files("omnibind.search") / "static"))


def create_app(searcher: Searcher, max_upload_bytes: int = MAX_UPLOAD_BYTES, decode_workers: int = DECODE_WORKERS,
               decode_queue: int = DECODE_QUEUE, body_idle_seconds: float = BODY_IDLE_SECONDS,
               generator: Any | None = None) -> FastAPI:
    """The FastAPI app serving one index; wrap it with uvicorn (see `omnibind serve`, which also adds the Host
    allow-list, the token and CORS). `generator` (a Generator loaded from the index's own checkpoint, when it has a
    decoder) makes POST /caption and GET /items/{id}/caption answer; without it they answer 409."""
    app = FastAPI(title="omnibind search", version="1", description="Search a media folder by text, picture or sound.",
                  docs_url="/docs", redoc_url=None)
    index = searcher.index
    pool, towers, guard = DecodePool(decode_workers, decode_queue), TowerScheduler(searcher.model), FileGuard()
    captioner = Captioner(generator)
    app.state.pool, app.state.towers, app.state.captioner = pool, towers, captioner
    app.router.on_shutdown.extend([pool.close, towers.close, captioner.close])
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_OVERHEAD, idle_seconds=body_idle_seconds)
    _install_error_handlers(app)
    page = (static_folder() / "index.html").read_text()
    app.mount("/static", StaticFiles(directory=static_folder()), name="static")

    def item_of(record: ItemRecord) -> Item:
        return Item.of(record, relative_path(record.path, index.roots))

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", response_model=Health, operation_id="health")
    def health() -> Health:
        """Whether the service is up, with the index's size, model, modalities and search method."""
        index.refresh()
        stats = index.stats()
        return Health(status="ok", items=stats["items"], modalities=stats["modalities"],
                      model=display_name(index.model.name), embed_dim=index.embed_dim,
                      runtime=runtime_of(searcher.model).name, query_modalities=list(searcher.query_modalities),
                      item_modalities=list(searcher.item_modalities),
                      search=stats["search"], max_upload_bytes=max_upload_bytes,
                      captioning=captioner.available, caption_modalities=list(captioner.modalities))

    @app.post("/search", response_model=SearchResponse, openapi_extra={"requestBody": search_body()},
              operation_id="search", responses={200: {"links": item_links("$response.body#/results/0/item/id")},
                                                **error_responses(400, 413, 415, 422, 503)})
    async def search(request: Request) -> SearchResponse:
        """Search by text (a JSON body) or by an uploaded media file (multipart field `file`)."""
        start = time.perf_counter()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            query = _parse_text_query(await request.body())
            echo = QueryEcho(modality=registry.TEXT.name, text=query.text, filter=query.modality)
            k, only, offset = query.k, query.modality, query.offset
            check_depth(offset, k)
            vector = await _embed_typed(searcher, towers, echo.modality, query.text)
        elif kind == "multipart/form-data":
            data, echo, k, offset = await _parse_upload(request, searcher, max_upload_bytes)
            only = echo.filter
            check_depth(offset, k)
            vector = await _embed_upload(searcher, pool, towers, echo, data)
        else:
            raise HTTPException(415, f"request body: content type {kind or 'missing'!r} is not accepted "
                                     "(expected application/json with a text query, or multipart/form-data "
                                     "with a file)")
        hits = await run_in_threadpool(searcher.search_vector, vector, offset + k, None if only is None else [only],
                                       echo.modality)
        return SearchResponse(query=echo, results=[Result(score=hit.score, item=item_of(hit.item))
                                                   for hit in hits[offset:]],
                              took_ms=round(1000 * (time.perf_counter() - start), 3), offset=offset)

    @app.get("/items/{item_id}/similar", response_model=SearchResponse, responses=error_responses(400, 404, 422))
    def similar(item_id: ItemId,
                k: Annotated[int, Query(ge=1, le=MAX_RESULTS, description="Number of results.")] = DEFAULT_RESULTS,
                offset: Annotated[int, Query(ge=0, le=MAX_DEPTH - 1, description="Results to skip; offset + k is at "
                                             f"most {MAX_DEPTH}.")] = 0,
                modality: Annotated[MediaModality | None, Query(description="Only return items of this modality.")]
                = None) -> SearchResponse:
        """More like this: items closest to an indexed item, searched by its stored vector (nothing is uploaded or
        embedded again); the item itself comes first, at a score of about 1, unless the filter leaves it out."""
        start = time.perf_counter()
        check_depth(offset, k)
        record = _record(searcher, item_id)
        vector = index.item_vector(item_id)
        if vector is None:  # deleted between the two reads
            raise HTTPException(404, f"item {item_id}: not in the index")
        hits = searcher.search_vector(vector, offset + k, None if modality is None else [modality], record.modality)
        echo = QueryEcho(modality=record.modality, filename=Path(record.path).name, filter=modality, item=item_id)
        return SearchResponse(query=echo, results=[Result(score=hit.score, item=item_of(hit.item))
                                                   for hit in hits[offset:]],
                              took_ms=round(1000 * (time.perf_counter() - start), 3), offset=offset)

    @app.get("/items/{item_id}", response_model=Item, operation_id="item",
             responses={200: {"links": item_links("$response.body#/id", own="item")}, **error_responses(404, 422)})
    def item(item_id: ItemId) -> Item:
        """Metadata of one indexed item."""
        return item_of(_record(searcher, item_id))

    @app.get("/items/{item_id}/thumbnail", response_class=Response, operation_id="thumbnail", responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "A preview drawn by the item's "
              "modality (a JPEG of a picture, a PNG waveform of a sound, ...)"}, **error_responses(404, 410, 422)})
    def thumbnail(item_id: ItemId) -> Response:
        """A small preview: the picture scaled down, the sound's waveform, as the item's modality draws it."""
        record = _record(searcher, item_id)
        _close(guard.open(record, index.roots).fd)  # served only while it is still the indexed file
        try:
            data, kind = _preview(record.path, record.modality, record.sha256)
        except NotImplementedError as err:
            raise HTTPException(404, f"item {item_id}: {record.modality} items have no preview") from err
        except Exception as err:  # a decoder boundary: the file no longer decodes
            raise HTTPException(410, f"item {item_id}: cannot be decoded any more ({_one_line(err)})") from err
        return Response(data, media_type=kind, headers={"cache-control": "private, max-age=3600"})

    media_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {kind: {} for kind in accepted_types()}, "description": "The indexed file"},
        206: {"content": {kind: {} for kind in accepted_types()}, "description": "One byte range of the indexed "
              "file (Range: bytes=START-END), for audio playback"},
        **error_responses(400, 404, 410, 416, 422)}

    @app.head("/items/{item_id}/media", response_class=Response, responses=media_responses,
              operation_id="media_headers")
    def media_headers(item_id: ItemId, request: Request) -> Response:
        """The headers GET would send for the indexed file (its length, type, ranges), without the body."""
        return media(item_id, request)

    @app.get("/items/{item_id}/media", response_class=Response, responses=media_responses, operation_id="media")
    def media(item_id: ItemId, request: Request) -> Response:
        """The indexed file itself, e.g. for an <audio> player."""
        record = _record(searcher, item_id)
        opened = guard.open(record, index.roots)
        try:
            span = byte_range(request.headers.get("range"), opened.size)
        except BaseException:
            _close(opened.fd)
            raise
        kind = mimetypes.guess_type(record.path)[0] or "application/octet-stream"
        return FileResponse(opened, kind, Path(record.path).name, span, send_body=request.method != "HEAD")

    @app.post("/caption", response_model=CaptionResponse, openapi_extra={"requestBody": caption_body()},
              operation_id="caption", responses=error_responses(400, 409, 413, 415, 422, 503))
    async def caption(request: Request) -> CaptionResponse:
        """Caption an uploaded picture or sound with the index's decoder (multipart field `file`, optional
        `prompt`, `max_tokens`, `beams`); 409 when the index's model has no decoder."""
        start = time.perf_counter()
        captioner.check_available()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "multipart/form-data":
            raise HTTPException(415, f"request body: content type {kind or 'missing'!r} is not accepted (expected "
                                     "multipart/form-data with a file)")
        form = await _read_form(request, CAPTION_FIELDS)
        settings = CaptionSettings(check_prompt(form.get("prompt", DEFAULT_PROMPT)),
                                   _form_int(form.get("max_tokens"), "max_tokens", DEFAULT_TOKENS, 1, MAX_TOKENS),
                                   _form_int(form.get("beams"), "beams", 1, 1, MAX_BEAMS))
        data, modality, filename = await _read_file(form, max_upload_bytes)
        captioner.check_modality(modality)
        name = f"file {filename[:80]!r}" if filename else "file"
        digest = hashlib.sha256(data).hexdigest()
        text, cached = await captioner.describe(
            name, digest, modality, settings,
            lambda: _decode(pool, name, modality, lambda: captioner.preprocess(modality, data)))
        return CaptionResponse(caption=text, prompt=settings.prompt, modality=modality,
                               max_tokens=settings.max_tokens, beams=settings.beams, cached=cached,
                               took_ms=round(1000 * (time.perf_counter() - start), 3), filename=filename or None)

    def verified(item_id: int) -> ItemRecord:
        """An item whose file still passes the checks /media makes (410 otherwise)."""
        record = _record(searcher, item_id)
        _close(guard.open(record, index.roots).fd)
        return record

    @app.get("/items/{item_id}/caption", response_model=CaptionResponse, operation_id="item_caption",
             responses=error_responses(404, 409, 410, 422, 503))
    async def item_caption(
        item_id: ItemId,
        prompt: Annotated[str, Query(min_length=1, max_length=MAX_PROMPT, description="What the decoder "
                                     "continues.")] = DEFAULT_PROMPT,
        max_tokens: Annotated[int, Query(ge=1, le=MAX_TOKENS, description="The most tokens to generate.")]
        = DEFAULT_TOKENS,
        beams: Annotated[int, Query(ge=1, le=MAX_BEAMS, description="Beam-search width (1: greedy).")] = 1,
    ) -> CaptionResponse:
        """Caption an indexed item with the index's decoder (its file read under the checks /media makes); 409
        when the index's model has no decoder or none of its towers reads the item."""
        start = time.perf_counter()
        captioner.check_available()
        record = await run_in_threadpool(verified, item_id)
        if record.modality not in captioner.modalities:
            raise HTTPException(409, f"item {item_id}: this index's decoder cannot caption {record.modality} items "
                                     f"(expected an item of {one_of(captioner.modalities)})")
        settings = CaptionSettings(prompt, max_tokens, beams)
        what = f"item {item_id}"

        async def decode() -> Any:
            try:
                return await pool.run(what, lambda: captioner.preprocess(record.modality, record.path))
            except BusyError:
                raise
            except Exception as err:  # a decoder boundary: the file no longer decodes
                raise HTTPException(410, f"{what}: cannot be decoded any more ({_one_line(err)})") from err

        text, cached = await captioner.describe(what, record.sha256, record.modality, settings, decode)
        return CaptionResponse(caption=text, prompt=settings.prompt, modality=record.modality,
                               max_tokens=settings.max_tokens, beams=settings.beams, cached=cached,
                               took_ms=round(1000 * (time.perf_counter() - start), 3), item=item_id)

    return app


def display_name(model: str) -> str:
    """How /health names the model: a hub id as is, a local checkpoint by its folder name (no server path)."""
    path = Path(model)
    return path.name if path.is_absolute() or path.exists() or model.startswith(".") else model


async def _embed_typed(searcher: Searcher, towers: TowerScheduler, modality: str, text: str) -> Any:
    """A typed query's vector: from the cache, or from its tower's queue."""
    prepared = searcher.prepare(modality, text)
    vector = searcher.cached(modality, prepared)
    if vector is None:
        vector = await towers.embed(modality, prepared)
        searcher.remember(modality, prepared, vector)
    return vector


async def _embed_upload(searcher: Searcher, pool: DecodePool, towers: TowerScheduler, echo: QueryEcho,
                        data: bytes) -> Any:
    """An upload decoded in the bounded pool (decoder errors answered 422 naming the file), then embedded; the same
    bytes again (the page re-runs a query when its filter changes) are answered from the cache by their hash."""
    name = f"file {echo.filename[:80]!r}" if echo.filename else "file"
    searcher.check_query_modality(echo.modality)
    key = "sha256:" + hashlib.sha256(data).hexdigest()
    cached = searcher.cached(echo.modality, key)
    if cached is not None:
        return cached
    tensor = await _decode(pool, name, echo.modality, lambda: searcher.prepare(echo.modality, data))
    vector = await towers.embed(echo.modality, tensor)
    searcher.remember(echo.modality, key, vector)
    return vector


async def _decode(pool: DecodePool, name: str, modality: str, work: Any) -> Any:
    """An upload decoded in the bounded pool: whatever its decoder raises is answered 422 naming the upload, a full
    pool 503."""
    try:
        return await pool.run(name, work)
    except InputError as err:
        raise UploadError(422, name, err.problem, err.expected) from err
    except BusyError:
        raise
    except Exception as err:  # a decoder boundary: whatever it raises, the answer names the upload
        raise UploadError(422, name, f"cannot decode ({_one_line(err)})", registry.get(modality).expected) from err


def _one_line(err: BaseException) -> str:
    from omnibind.preprocess.image import decoder_reason

    return decoder_reason(err).splitlines()[0] if str(err) else type(err).__name__


def _close(fd: int) -> None:
    os.close(fd)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answer is {"detail": "<field>: <problem> (expected …)"}."""

    @app.exception_handler(InputError)
    async def input_error(request: Request, err: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=getattr(err, "status_code", 400))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(err.errors())}, status_code=422)

    @app.exception_handler(BusyError)
    async def busy(request: Request, err: BusyError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503, headers={"retry-after": str(err.retry_after)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code, headers=err.headers)


def _validation_message(errors: Any) -> str:
    """Pydantic errors as one line: `field: problem; field: problem`."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "path", "query"))
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _parse_text_query(body: bytes) -> TextQuery:
    if not body.strip():
        raise InputError("request body", "empty", 'a JSON object such as {"text": "a dog on a beach"}')
    try:
        return TextQuery.model_validate_json(body)
    except ValidationError as err:
        raise RequestValidationError(err.errors()) from err


async def _parse_upload(request: Request, searcher: Searcher,
                        max_bytes: int) -> tuple[bytes, QueryEcho, int, int]:
    """The uploaded file's bytes, the query echo (modality, file name, filter), k and the offset."""
    form = await _read_form(request, SEARCH_FIELDS)
    k = _form_int(form.get("k"), "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
    offset = _form_int(form.get("offset"), "offset", 0, 0, MAX_DEPTH - 1)
    only = form.get("modality")
    if only is not None and only not in registry.media_names():
        raise InputError("modality", f"got {str(only)[:40]!r}", one_of(searcher.item_modalities))
    data, modality, filename = await _read_file(form, max_bytes)
    echo = QueryEcho(modality=modality, filename=filename, filter=only)
    return data, echo, k, offset


async def _read_form(request: Request, fields: tuple[str, ...]) -> Any:
    """A multipart form with a file in `file`, `fields` beside it (each at most once) and nothing else."""
    try:
        form = await request.form(max_files=1, max_fields=5, max_part_size=64 * 1024)
    except HTTPException:
        raise
    except Exception as err:  # python-multipart raises several types on malformed bodies
        raise InputError("request body", f"malformed multipart data ({err})", "multipart/form-data with a file") \
            from err
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError("file", "missing", f"{one_of(noun(m) for m in registry.media())} in the multipart "
                                            "field 'file'")
    unknown = sorted(set(form.keys()) - {"file", *fields})
    if unknown:
        raise InputError(unknown[0], "unknown form field", f"only the fields file, {', '.join(fields[:-1])} and "
                                                           f"{fields[-1]}")
    repeated = sorted(name for name in set(form.keys()) if len(form.getlist(name)) > 1)
    if repeated:
        raise InputError(repeated[0], f"given {len(form.getlist(repeated[0]))} times", "at most once")
    return form


async def _read_file(form: Any, max_bytes: int) -> tuple[bytes, str, str | None]:
    """The uploaded file's bytes, its modality (checked: size, type, header) and its name."""
    upload = form.get("file")
    data = await upload.read(max_bytes + 1)
    field = f"file {upload.filename[:80]!r}" if upload.filename else "file"
    modality = upload_modality(data, upload.content_type, upload.filename, field=field, max_bytes=max_bytes)
    return data, modality, upload.filename or None


def _form_int(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not isinstance(value, str) or not FORM_INT.fullmatch(value.strip()) or not low <= int(value) <= high:
        raise InputError(name, f"got {str(value)[:40]!r}", f"an integer from {low} to {high}")
    return int(value)


def _record(searcher: Searcher, item_id: int) -> ItemRecord:
    record = searcher.index.item(item_id)
    if record is None:
        raise HTTPException(404, f"item {item_id}: not in the index")
    return record


@lru_cache(maxsize=1024)
def _preview(path: str, modality: str, sha256: str) -> tuple[bytes, str]:
    """The modality's preview of a file and its media type, cached per file content (the hash is in the key)."""
    return registry.get(modality).preview(Path(path))
