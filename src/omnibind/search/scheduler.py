"""Query scheduling for the service: uploads are decoded in a bounded pool (a full pool answers 503 with
Retry-After instead of queueing without end), and each tower has its own worker thread that embeds whatever
queries are waiting for it in one forward pass (micro-batching). A text query therefore never waits for a
picture to be decoded or a sound tower to run: it only shares the CPU with them."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from omnibind.models.model import OmniBind

T = TypeVar("T")
DECODE_WORKERS = 2
DECODE_QUEUE = 32  # decodes waiting for a worker (their bodies are already bounded by BodyLimit) before 503
MAX_BATCH = 16
RETRY_AFTER_SECONDS = 1


class BusyError(Exception):
    """The decode pool is full: the client should retry after `retry_after` seconds (HTTP 503)."""

    def __init__(self, what: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(f"{what}: the service is busy decoding other uploads (retry in {retry_after} s)")
        self.retry_after = retry_after


class DecodePool:
    """A thread pool that takes at most `workers + waiting` jobs at once and refuses more (BusyError)."""

    def __init__(self, workers: int = DECODE_WORKERS, waiting: int = DECODE_QUEUE) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(workers + waiting)

    async def run(self, what: str, work: Callable[[], T]) -> T:
        """`work()` on a pool thread, or BusyError at once when the pool and its queue are full."""
        if not self._slots.acquire(blocking=False):
            raise BusyError(what)
        try:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="omnibind-decode")
                future = self._pool.submit(work)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the workers once running jobs end (a later job starts new ones: the app may be started again)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Job:
    inputs: Any  # a (C, ...) tensor of a media modality, or a string of a typed one
    future: Future[np.ndarray]


class TowerScheduler:
    """One worker thread per tower; queued queries of one tower are embedded together, up to `max_batch`."""

    def __init__(self, model: OmniBind, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self.max_batch = max_batch
        self._queues: dict[str, queue.SimpleQueue[_Job | None]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    async def embed(self, modality: str, inputs: Any) -> np.ndarray:
        """The (D,) unit vector of one preprocessed query (a tensor) or typed query (a string)."""
        job = _Job(inputs, Future())
        self._queue(modality).put(job)
        return await asyncio.wrap_future(job.future)

    def _queue(self, modality: str) -> queue.SimpleQueue[_Job | None]:
        with self._lock:
            found = self._queues.get(modality)
            if found is None:
                found = self._queues[modality] = queue.SimpleQueue()
                thread = threading.Thread(target=self._work, args=(modality, found), daemon=True,
                                          name=f"omnibind-{modality}-tower")
                self._threads.append(thread)
                thread.start()
            return found

    def _work(self, modality: str, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            first = jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    jobs.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._run(modality, batch)

    @torch.no_grad()
    def _run(self, modality: str, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            inputs = [job.inputs for job in live]
            if not isinstance(inputs[0], str):
                inputs = torch.stack(inputs)  # type: ignore[assignment]
            vectors = self.model.encode(modality, inputs).float().cpu().numpy()
        except BaseException as err:  # handed to the waiting requests, which answer it
            for job in live:
                job.future.set_exception(err)
            return
        for job, vector in zip(live, vectors, strict=True):
            job.future.set_result(vector)

    def close(self) -> None:
        """Let each worker finish its queue, then stop (a later query starts a new one: the app may be started
        again, as test clients do)."""
        with self._lock:
            for jobs in self._queues.values():
                jobs.put(None)
            self._queues.clear()
