"""The search service (FastAPI): search by text or by an uploaded file of any registered media modality (a
picture, a sound, ...), item metadata, previews (drawn by each item's modality), media playback, health, and
the web page at `/`. Files are only ever served for indexed items, looked up by id, and only while they still
match what was indexed; bad input is answered 4xx with a one-line reason."""

from __future__ import annotations

import mimetypes
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.search.limits import BodyLimit
from omnibind.search.query import Searcher, one_of
from omnibind.search.schemas import (
    DEFAULT_RESULTS,
    MAX_RESULTS,
    Health,
    Item,
    QueryEcho,
    Result,
    SearchResponse,
    TextQuery,
    error_responses,
)
from omnibind.search.store import MAX_ITEM_ID, ItemRecord
from omnibind.search.uploads import MAX_UPLOAD_BYTES, accepted_types, noun, upload_modality

MULTIPART_OVERHEAD = 64 * 1024
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ITEM_ID, description="Item id, as returned by /search.")]


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
                        "modality": {"type": "string", "enum": [m.name for m in media],
                                     "description": "Only return items of this modality."},
                    },
                    "additionalProperties": False,
                }
            },
        },
    }


def static_folder() -> Path:
    """The web page's files (package data of omnibind.search)."""
    return Path(str(resources.files("omnibind.search") / "static"))


def create_app(searcher: Searcher, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The FastAPI app serving one index; wrap it with uvicorn (see `omnibind serve`)."""
    app = FastAPI(title="omnibind search", version="1", description="Search a media folder by text, picture or sound.",
                  docs_url="/docs", redoc_url=None)
    index = searcher.index
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes + MULTIPART_OVERHEAD)
    _install_error_handlers(app)
    page = (static_folder() / "index.html").read_text()
    app.mount("/static", StaticFiles(directory=static_folder()), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """Whether the service is up, with the index's size, model, modalities and search method."""
        index.refresh()
        stats = index.stats()
        return Health(status="ok", items=stats["items"], modalities=stats["modalities"], model=index.model.name,
                      embed_dim=index.embed_dim, query_modalities=list(searcher.query_modalities),
                      item_modalities=list(searcher.item_modalities), search=stats["search"],
                      max_upload_bytes=max_upload_bytes)

    @app.post("/search", response_model=SearchResponse, openapi_extra={"requestBody": search_body()},
              responses=error_responses(400, 413, 415, 422))
    async def search(request: Request) -> SearchResponse:
        """Search by text (a JSON body) or by an uploaded media file (multipart field `file`)."""
        start = time.perf_counter()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            query = _parse_text_query(await request.body())
            echo = QueryEcho(modality=registry.TEXT.name, text=query.text, filter=query.modality)
            source: str | bytes = query.text
            k, only = query.k, query.modality
        elif kind == "multipart/form-data":
            source, echo, k = await _parse_upload(request, searcher, max_upload_bytes)
            only = echo.filter
        else:
            raise HTTPException(415, f"request body: content type {kind or 'missing'!r} is not accepted "
                                     "(expected application/json with a text query, or multipart/form-data "
                                     "with a file)")
        hits = await run_in_threadpool(searcher.search, echo.modality, source, k, None if only is None else [only])
        return SearchResponse(query=echo, results=[Result.of(hit) for hit in hits],
                              took_ms=round(1000 * (time.perf_counter() - start), 3))

    @app.get("/items/{item_id}", response_model=Item, responses=error_responses(404, 422))
    def item(item_id: ItemId) -> Item:
        """Metadata of one indexed item."""
        return Item.of(_record(searcher, item_id))

    @app.get("/items/{item_id}/thumbnail", response_class=Response, responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "A preview drawn by the item's "
              "modality (a JPEG of a picture, a PNG waveform of a sound, ...)"}, **error_responses(404, 410, 422)})
    def thumbnail(item_id: ItemId) -> Response:
        """A small preview: the picture scaled down, the sound's waveform, as the item's modality draws it."""
        record = _current_file(searcher, item_id)
        try:
            data, kind = _preview(record.path, record.modality, record.sha256)
        except NotImplementedError as err:
            raise HTTPException(404, f"item {item_id}: {record.modality} items have no preview") from err
        except (InputError, OSError, RuntimeError, ValueError) as err:
            raise HTTPException(410, f"item {item_id}: cannot be decoded any more ({err})") from err
        return Response(data, media_type=kind, headers={"cache-control": "private, max-age=3600"})

    @app.get("/items/{item_id}/media", response_class=FileResponse, responses={
        200: {"content": {kind: {} for kind in accepted_types()}, "description": "The indexed file (range "
              "requests supported, for audio playback)"}, **error_responses(404, 410, 422)})
    def media(item_id: ItemId) -> FileResponse:
        """The indexed file itself, e.g. for an <audio> player."""
        record = _current_file(searcher, item_id)
        kind = mimetypes.guess_type(record.path)[0] or "application/octet-stream"
        return FileResponse(record.path, media_type=kind, content_disposition_type="inline",
                            filename=Path(record.path).name)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answer is {"detail": "<field>: <problem> (expected …)"}."""

    @app.exception_handler(InputError)
    async def input_error(request: Request, err: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=getattr(err, "status_code", 400))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(err.errors())}, status_code=422)

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


async def _parse_upload(request: Request, searcher: Searcher, max_bytes: int) -> tuple[bytes, QueryEcho, int]:
    """The uploaded file's bytes, the query echo (modality, file name, filter) and k."""
    try:
        form = await request.form(max_files=1, max_fields=4, max_part_size=64 * 1024)
    except HTTPException:
        raise
    except Exception as err:  # python-multipart raises several types on malformed bodies
        raise InputError("request body", f"malformed multipart data ({err})", "multipart/form-data with a file") \
            from err
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError("file", "missing", f"{one_of(noun(m) for m in registry.media())} in the multipart "
                                            "field 'file'")
    unknown = sorted(set(form.keys()) - {"file", "k", "modality"})
    if unknown:
        raise InputError(unknown[0], "unknown form field", "only the fields file, k and modality")
    repeated = sorted(name for name in set(form.keys()) if len(form.getlist(name)) > 1)
    if repeated:
        raise InputError(repeated[0], f"given {len(form.getlist(repeated[0]))} times", "at most once")
    k = _form_int(form.get("k"), "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
    only = form.get("modality")
    if only is not None and only not in registry.media_names():
        raise InputError("modality", f"got {str(only)[:40]!r}", one_of(searcher.item_modalities))
    data = await upload.read(max_bytes + 1)
    modality = upload_modality(data, upload.content_type, upload.filename, max_bytes=max_bytes)
    echo = QueryEcho(modality=modality, filename=(upload.filename or None), filter=only)
    return data, echo, k


def _form_int(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip().lstrip("-").isdigit() or not low <= int(value) <= high:
        raise InputError(name, f"got {str(value)[:40]!r}", f"an integer from {low} to {high}")
    return int(value)


def _record(searcher: Searcher, item_id: int) -> ItemRecord:
    record = searcher.index.item(item_id)
    if record is None:
        raise HTTPException(404, f"item {item_id}: not in the index")
    return record


def _current_file(searcher: Searcher, item_id: int) -> ItemRecord:
    """The item, only while its file still has the size and mtime that were indexed."""
    record = _record(searcher, item_id)
    try:
        stat = Path(record.path).stat()
    except OSError as err:
        raise HTTPException(410, f"item {item_id}: its file is gone since indexing (re-run omnibind index)") from err
    if (stat.st_size, stat.st_mtime_ns) != (record.size, record.mtime_ns):
        raise HTTPException(410, f"item {item_id}: its file changed since indexing (re-run omnibind index)")
    return record


@lru_cache(maxsize=1024)
def _preview(path: str, modality: str, sha256: str) -> tuple[bytes, str]:
    """The modality's preview of a file and its media type, cached per file content (the hash is in the key)."""
    return registry.get(modality).preview(Path(path))
