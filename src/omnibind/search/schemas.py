"""Request and response bodies of the search service; they are also its OpenAPI spec.

Modality names are plain strings checked against the modality registry when a request is validated, and
listed as an `enum` in the spec, read from the registry when the spec is generated (after the app is created,
so plugin modalities are in it). An item's metadata is whatever its modality's `describe()` records (width and
height of a picture; duration, sample_rate and channels of a sound; ...): `Item` allows extra keys and carries
that metadata flattened beside its fixed fields, as the index's records do (see omnibind.search.store).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.search.index import Hit
from omnibind.search.query import MAX_K, one_of, query_order
from omnibind.search.store import ItemRecord

MAX_RESULTS = 100
DEFAULT_RESULTS = 12
MAX_TEXT = 1000
MAX_DEPTH = MAX_K  # how deep one query pages: offset + k <= MAX_DEPTH


class RegisteredName:
    """Annotated metadata: a string that must be one of `names()` (a registry list, read at each use), shown in
    the JSON schema as an enum of them and refused with pydantic's own wording for literals."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self.names = names

    def __call__(self, value: str) -> str:
        allowed = tuple(self.names())
        if value not in allowed:
            raise PydanticCustomError("literal_error", "Input should be {expected}",
                                      {"expected": one_of(repr(n) for n in allowed)})
        return value

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["enum"] = list(self.names())
        return json_schema


_MEDIA = RegisteredName(registry.media_names)
_QUERY = RegisteredName(query_order)
MediaModality = Annotated[str, AfterValidator(_MEDIA), _MEDIA]
"""A registered media modality (one with files of its own: image, audio, ...)."""
QueryModality = Annotated[str, AfterValidator(_QUERY), _QUERY]
"""A registered modality a query can be in (text first, then the media)."""


class TextQuery(BaseModel):
    """A text query (JSON body of POST /search)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no coercion: `"k": true` is not a number
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="What to look for, e.g. 'a dog on a beach'.")
    k: int = Field(DEFAULT_RESULTS, ge=1, le=MAX_RESULTS, description="Number of results.")
    modality: MediaModality | None = Field(None, description="Only return items of this modality.")
    offset: int = Field(0, ge=0, le=MAX_DEPTH - 1, description=f"Results to skip (the next page starts at the "
                        f"previous offset + k); offset + k is at most {MAX_DEPTH}.")


def check_depth(offset: int, k: int) -> None:
    """Refuse a page that ends past MAX_DEPTH results (the index is searched for offset + k hits)."""
    if offset + k > MAX_DEPTH:
        raise InputError("offset", f"got {offset} with k {k}", f"offset + k of at most {MAX_DEPTH}")


class Item(BaseModel):
    """An indexed file's fixed fields, the metadata its modality records (extra keys, e.g. width and height),
    and the URLs of its preview and its media."""

    model_config = ConfigDict(extra="allow")
    id: int
    path: str = Field(description="The file's path relative to the indexed folder (never a server path).")
    name: str
    modality: str = Field(description="The item's media modality (one of /health's item_modalities).")
    size: int
    mtime_ns: int
    sha256: str
    indexed_at: float
    thumbnail_url: str
    media_url: str
    media_type: str | None = Field(None, description="The file's media type, guessed from its name (e.g. "
                                   "image/webp), so a client can choose how to show it.")

    @classmethod
    def of(cls, record: ItemRecord, path: str | None = None) -> Item:
        """The API form of a stored record; `path` is what responses show (relative to the indexed folder),
        by default the file's name: a server path is never sent."""
        return cls(**{**record.to_dict(), "path": path or Path(record.path).name, "name": Path(record.path).name,
                      "thumbnail_url": f"/items/{record.id}/thumbnail", "media_url": f"/items/{record.id}/media",
                      "media_type": mimetypes.guess_type(record.path)[0]})


class Result(BaseModel):
    """One hit: cosine similarity between the query and the item (higher is closer), and the item."""

    score: float
    item: Item

    @classmethod
    def of(cls, hit: Hit, path: str | None = None) -> Result:
        """The API form of a search hit (`path`: as in Item.of)."""
        return cls(score=hit.score, item=Item.of(hit.item, path))


class QueryEcho(BaseModel):
    """What was searched for."""

    modality: QueryModality
    text: str | None = None
    filename: str | None = None
    filter: MediaModality | None = None
    item: int | None = Field(None, exclude_if=lambda value: value is None,
                             description="The indexed item whose stored vector is the query "
                             "(GET /items/{id}/similar); absent for other queries.")


class SearchResponse(BaseModel):
    """Results of POST /search, best first."""

    query: QueryEcho
    results: list[Result]
    took_ms: float
    offset: int = Field(0, description="How many better results came before these (the request's offset).")


class PartSearch(BaseModel):
    """How one modality's vectors are searched, as the vector backend describes it (FAISS: exact, or IVF with
    its cell count, tuned nprobe and measured recall@10)."""

    model_config = ConfigDict(extra="allow")
    kind: str = Field(description="Search method, e.g. 'exact' or 'ivf'.")
    count: int
    nlist: int | None = None
    nprobe: int | None = None
    recall_at_10: float | None = None
    recall_queries: int | None = None


class Health(BaseModel):
    """Service status: index size, model, and the query and item modalities the model supports."""

    status: Literal["ok"]
    items: int
    modalities: dict[str, int]
    model: str
    embed_dim: int
    runtime: str = Field("fp32", description="The inference path queries are embedded on (the one that built the "
                                             "index unless the service was started with another), e.g. 'bf16'.")
    query_modalities: list[str]
    item_modalities: list[str] = Field(description="Media modalities this index holds and results can be "
                                                   "filtered by.")
    search: dict[str, PartSearch]
    max_upload_bytes: int
    max_depth: int = Field(MAX_DEPTH, description="How deep a query can page: its offset + k is at most this.")
    captioning: bool = Field(False, description="Whether POST /caption and GET /items/{id}/caption answer: the "
                             "index's checkpoint also holds a decoder (a captioning run's).")
    caption_modalities: list[str] = Field(default_factory=list, description="Media modalities the decoder can "
                                          "caption (empty without captioning).")


class CaptionResponse(BaseModel):
    """A generated caption of an uploaded file (POST /caption) or an indexed item (GET /items/{id}/caption)."""

    caption: str = Field(description="The generated text.")
    prompt: str = Field(description="The prompt the decoder continued.")
    modality: MediaModality
    max_tokens: int
    beams: int
    took_ms: float
    cached: bool = Field(description="Whether the caption was generated before for the same content and settings.")
    filename: str | None = Field(None, exclude_if=lambda value: value is None,
                                 description="The uploaded file's name (POST /caption).")
    item: int | None = Field(None, exclude_if=lambda value: value is None,
                             description="The captioned item's id (GET /items/{id}/caption).")


class ErrorBody(BaseModel):
    """Every error answer: one line naming the field and what was expected."""

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    reasons = {400: "Bad input", 401: "Missing or wrong token", 404: "No such item",
               409: "Captioning asked of a model without a decoder, or of an item it has no tower for",
               410: "File changed or removed since indexing", 413: "Upload too large", 415: "Unsupported content type",
               416: "Range outside the file", 422: "Invalid request", 503: "Busy: retry after the Retry-After seconds"}
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}
