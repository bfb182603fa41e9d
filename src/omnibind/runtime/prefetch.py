"""Keep the model busy while files are decoded: the next batches are read, decoded and preprocessed on worker
threads (Pillow, soundfile and the resamplers release the GIL) while the current one is embedded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from omnibind.errors import InputError

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 2  # batches prepared ahead of the one being embedded


def prefetch(items: Iterable[T], prepare: Callable[[T], R], ahead: int = AHEAD) -> Iterator[R]:
    """`prepare(item)` for every item, in order, computed up to `ahead` items in advance on `ahead` threads; an
    error raised by `prepare` surfaces when its item is reached. `ahead=0` prepares each item when it is asked
    for, on the calling thread."""
    if ahead < 0:
        raise InputError("ahead", f"got {ahead}", "0 (no prefetch) or a positive number of batches")
    if ahead == 0:
        yield from map(prepare, items)
        return
    pending: deque[Future[R]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="omnibind-prefetch") as pool:
        try:
            for item in source:
                pending.append(pool.submit(prepare, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # the consumer stopped early or failed: drop what has not started
            for future in pending:
                future.cancel()
