"""Request and response bodies of the search service; they are also its OpenAPI spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from omnibind.search.index import Hit
from omnibind.search.store import ItemRecord

MAX_RESULTS = 100
DEFAULT_RESULTS = 12
MAX_TEXT = 1000
ItemModality = Literal["image", "audio"]


class TextQuery(BaseModel):
    """A text query (JSON body of POST /search)."""

    model_config = ConfigDict(extra="forbid", strict=True)  # no coercion: `"k": true` is not a number
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="What to look for, e.g. 'a dog on a beach'.")
    k: int = Field(DEFAULT_RESULTS, ge=1, le=MAX_RESULTS, description="Number of results.")
    modality: ItemModality | None = Field(None, description="Only return items of this modality.")


class Item(BaseModel):
    """An indexed file's metadata, with the URLs of its preview and its media."""

    id: int
    path: str
    name: str
    modality: ItemModality
    size: int
    mtime_ns: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    indexed_at: float
    thumbnail_url: str
    media_url: str

    @classmethod
    def of(cls, record: ItemRecord) -> Item:
        """The API form of a stored record."""
        return cls(**record.to_dict(), name=Path(record.path).name, thumbnail_url=f"/items/{record.id}/thumbnail",
                   media_url=f"/items/{record.id}/media")


class Result(BaseModel):
    """One hit: cosine similarity between the query and the item (higher is closer), and the item."""

    score: float
    item: Item

    @classmethod
    def of(cls, hit: Hit) -> Result:
        """The API form of a search hit."""
        return cls(score=hit.score, item=Item.of(hit.item))


class QueryEcho(BaseModel):
    """What was searched for."""

    modality: Literal["text", "image", "audio"]
    text: str | None = None
    filename: str | None = None
    filter: ItemModality | None = None


class SearchResponse(BaseModel):
    """Results of POST /search, best first."""

    query: QueryEcho
    results: list[Result]
    took_ms: float


class PartSearch(BaseModel):
    """How one modality's vectors are searched."""

    kind: Literal["exact", "ivf"]
    count: int
    nlist: int | None = None
    nprobe: int | None = None
    recall_at_10: float | None = None
    recall_queries: int | None = None


class Health(BaseModel):
    """Service status: index size, model, and the query modalities the model supports."""

    status: Literal["ok"]
    items: int
    modalities: dict[str, int]
    model: str
    embed_dim: int
    query_modalities: list[str]
    search: dict[str, PartSearch]
    max_upload_bytes: int


class ErrorBody(BaseModel):
    """Every error answer: one line naming the field and what was expected."""

    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    reasons = {400: "Bad input", 404: "No such item", 410: "File changed or removed since indexing",
               413: "Upload too large", 415: "Unsupported content type", 422: "Invalid request"}
    return {code: {"model": ErrorBody, "description": reasons[code]} for code in codes}
