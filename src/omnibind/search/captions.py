"""Captions in the search service. When the index's checkpoint also holds a decoder (a captioning run trained beside
a contrastive loss), `omnibind serve` keeps its Generator beside the embedding model, and the service captions an
uploaded picture or sound (POST /caption) or an indexed item (GET /items/{id}/caption).

Generation runs on one worker thread of its own, never on the event loop nor on a tower's thread, so text queries
do not wait for it: one caption is generated at a time, a few more wait, and any beyond that are answered 503 with
Retry-After. Captions are cached by the media's SHA-256 and the settings, so the page asking again is free."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.search.query import one_of
from omnibind.search.scheduler import RETRY_AFTER_SECONDS, BusyError

DEFAULT_PROMPT = "caption en"
MAX_PROMPT = 200  # characters
DEFAULT_TOKENS = 32
MAX_TOKENS = 64
MAX_BEAMS = 4
CAPTION_QUEUE = 4  # captions waiting for the worker before 503
CACHE_SIZE = 512
NO_DECODER = "this index's model has no decoder"
WITH_DECODER = ("an index built with a generator checkpoint (a captioning run trained beside a contrastive loss, "
                "`loss.options.contrastive`)")


class CaptionBusyError(BusyError):
    """The caption worker and its queue are full (HTTP 503 with Retry-After)."""

    def __init__(self, what: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        Exception.__init__(self, f"{what}: the service is busy generating other captions (retry in {retry_after} s)")
        self.retry_after = retry_after


class CaptioningUnavailableError(InputError):
    """Captioning asked of an index whose model has no decoder (HTTP 409)."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__("captioning", NO_DECODER, WITH_DECODER)


@dataclass(frozen=True)
class CaptionSettings:
    """What a caption is generated with: the prompt, the most new tokens and the beams (1: greedy)."""

    prompt: str = DEFAULT_PROMPT
    max_tokens: int = DEFAULT_TOKENS
    beams: int = 1


def check_prompt(value: Any) -> str:
    """A prompt from a form field: a string of 1 to MAX_PROMPT characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_PROMPT:
        shown = f"{len(value)} characters" if isinstance(value, str) else f"got {type(value).__name__}"
        raise InputError("prompt", shown, f"a prompt of 1 to {MAX_PROMPT} characters, e.g. {DEFAULT_PROMPT!r}")
    return value


class Captioner:
    """The index's generator (or None), its bounded worker and its cache of captions."""

    def __init__(self, generator: Any | None, waiting: int = CAPTION_QUEUE) -> None:
        self.generator: Any = generator  # a Generator (typed loosely: generation is imported only when it is used)
        self._slots = threading.BoundedSemaphore(1 + waiting)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, CaptionSettings], str] = OrderedDict()

    @property
    def available(self) -> bool:
        """Whether this service can caption: a generator with a prompt tokenizer."""
        return self.generator is not None and getattr(self.generator, "tokenizer", None) is not None

    @property
    def modalities(self) -> tuple[str, ...]:
        """The media the generator reads (its towers), in the registry's order."""
        if not self.available:
            return ()
        return tuple(m for m in registry.media_names() if m in self.generator.modalities)

    def check_available(self) -> None:
        """Refuse (409) when the index's model has no decoder."""
        if not self.available:
            raise CaptioningUnavailableError()

    def check_modality(self, modality: str) -> None:
        """Refuse (400) media the generator has no tower for, naming those it reads."""
        self.check_available()
        if modality not in self.modalities:
            nouns = (registry.get(m).item_noun() for m in self.modalities)
            raise InputError(modality, f"this index's generator cannot caption {modality}: it has no {modality} tower",
                             one_of(nouns))

    def preprocess(self, modality: str, source: Any) -> Any:
        """One item (a path or the file's bytes) as the generator's tower takes it (run in the decode pool)."""
        return self.generator.processors[modality].one(source)

    def cached(self, digest: str, modality: str, settings: CaptionSettings) -> str | None:
        """A caption generated before for the same content (by SHA-256), modality and settings."""
        with self._lock:
            key = (digest, modality, settings)
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def remember(self, digest: str, modality: str, settings: CaptionSettings, caption: str) -> None:
        with self._lock:
            self._cache[(digest, modality, settings)] = caption
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    async def describe(self, what: str, digest: str, modality: str, settings: CaptionSettings,
                       decode: Callable[[], Awaitable[Any]]) -> tuple[str, bool]:
        """(caption, whether it came from the cache) of one item by its content digest: a caption made before for
        the same content and settings, or `decode()` then a new caption, remembered."""
        text = self.cached(digest, modality, settings)
        if text is not None:
            return text, True
        text = await self.caption(what, modality, await decode(), settings)
        self.remember(digest, modality, settings, text)
        return text, False

    async def caption(self, what: str, modality: str, inputs: Any, settings: CaptionSettings) -> str:
        """The caption of one preprocessed item, generated on the worker thread; CaptionBusyError at once when one
        caption is being generated and CAPTION_QUEUE more wait."""
        if not self._slots.acquire(blocking=False):
            raise CaptionBusyError(what)
        try:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omnibind-caption")
                future = self._pool.submit(self._generate, modality, inputs, settings)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def _generate(self, modality: str, inputs: Any, settings: CaptionSettings) -> str:
        texts = self.generator.generate(settings.prompt, max_new_tokens=settings.max_tokens, beams=settings.beams,
                                        **{modality: inputs})
        return str(texts[0])

    def close(self) -> None:
        """Stop the worker once its caption is done (a later caption starts a new one: the app may start again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
