"""Incremental, crash-safe indexing of a media folder (the engine behind `omnibind index`).

A run compares the folder with SQLite, drops deleted files, and embeds new or changed files in batches; each
batch is committed in one transaction (metadata and vectors together), so a run killed at any point keeps
every batch it committed, and the next run picks up exactly the files still missing. A file whose mtime
changed but whose content hash did not is only re-stamped, not re-embedded.

No file can stop a run: one that cannot be read or decoded (whatever its decoder raises) is recorded as a
failure with its reason and retried only once it changes; entries that are not indexable files (empty files,
FIFOs, links, names that are not UTF-8) are skipped and named. Each file is hashed in chunks and decoded by its
modality from its path, which reads only what it uses (an image's header and pixels, a sound's first clip).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.progress import progress_bar
from omnibind.runtime import prefetch, runtime_of
from omnibind.runtime.record import META_KEY as RUNTIME_KEY
from omnibind.runtime.record import check_same_runtime
from omnibind.search import backend
from omnibind.search.ann import APPROXIMATE_ABOVE, TARGET_RECALL
from omnibind.search.backend import SearchInfo
from omnibind.search.identity import ModelIdentity, check_same_model, identify
from omnibind.search.lock import LOCK_FILE
from omnibind.search.scan import FoundFile, MediaInfo, SkippedFile, describe, file_hash, walk_media
from omnibind.search.store import DB_FILE, IndexStore, KnownFile, is_server_url, open_writer

StepHook = Callable[[str], None]
"""Called with "scanned", "removed", "batch-embedded" (before its commit), "batch-committed",
"vectors-written" (cache files written, not yet renamed into place) and "done"."""


@dataclass
class UpdateReport:
    """What one run did, and what the index holds afterwards."""

    root: str
    added: int = 0
    changed: int = 0
    restamped: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    still_failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    search: dict[str, SearchInfo] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def embedded(self) -> int:
        """Files embedded by this run (new plus changed)."""
        return self.added + self.changed

    @property
    def skipped_count(self) -> int:
        """Files left out: those of modalities the model has no tower for, and entries that are not indexable."""
        return sum(self.skipped.values()) + len(self.skipped_files)


@dataclass
class Plan:
    """The difference between the folder and the index."""

    todo: list[FoundFile]
    removed: list[str]
    unchanged: int
    skipped: dict[str, int]
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    still_failed: list[tuple[str, str]] = field(default_factory=list)


def update_index(
    index: str | Path,
    root: str | Path,
    model: OmniBind,
    model_name: str | Path,
    batch_size: int = 32,
    approximate_above: int = APPROXIMATE_ABOVE,
    target_recall: float = TARGET_RECALL,
    show_progress: bool = False,
    on_step: StepHook | None = None,
    follow_symlinks: bool = False,
    vector_options: dict[str, Any] | None = None,
) -> UpdateReport:
    """Bring the index in `index` (a folder, or a postgresql:// URL) up to date with the media files under `root`
    (every registered media modality the model has a tower for; files of others are counted as skipped).
    Symbolic links are skipped unless `follow_symlinks` (then the service may serve their targets, wherever
    they are). `vector_options` choose another vector backend and its settings (omnibind.search.ondisk)."""
    start = time.perf_counter()
    step = on_step or (lambda name: None)
    root_path, folder = _check_paths(root, index)
    if batch_size < 1:
        raise InputError("batch_size", f"got {batch_size}", "a positive number of files per batch")
    if not 0 < target_recall <= 1:
        raise InputError("target_recall", f"got {target_recall}", "a fraction in (0, 1]")
    identity = identify(model, model_name)
    report = UpdateReport(str(root_path))
    with open_writer(folder or str(index), {"model": identity.to_dict()}) as store:
        check_same_model(store.name, ModelIdentity.from_dict(store.meta("model")), identity, model)
        # The same weights may have moved (or been fingerprinted by older code): record them as they are now.
        options = {"approximate_above": approximate_above, "target_recall": target_recall, **(vector_options or {})}
        roots = {**(store.meta("roots") or {}), str(root_path): {"follow_symlinks": follow_symlinks}}
        runtime = runtime_of(model)
        check_same_runtime(store.name, store.meta(RUNTIME_KEY), runtime, sum(store.counts().values()) > 0)
        store.set_meta({"model": identity.to_dict(), "ann": options, "roots": roots, RUNTIME_KEY: runtime.to_dict()})
        known = store.known_files(str(root_path))
        plan = plan_changes(store, root_path, known, model.modalities, skip=[folder] if folder else [],
                            follow_symlinks=follow_symlinks)
        report.unchanged, report.skipped, report.skipped_files = plan.unchanged, plan.skipped, plan.skipped_files
        report.still_failed = plan.still_failed
        step("scanned")
        if plan.removed:
            with store.transaction() as db:
                store.remove_paths(db, plan.removed)
            report.removed = sum(path in known for path in plan.removed)
            step("removed")
        _embed_all(store, model, plan.todo, known, batch_size, report, show_progress, step, follow_symlinks)
        search = _current_vectors(store, identity.embed_dim, options, step)
        report.totals, report.search = store.counts(), search
        step("done")
    report.seconds = time.perf_counter() - start
    return report


def _check_paths(root: str | Path, index: str | Path) -> tuple[Path, Path | None]:
    """The resolved media folder, and the index folder (None for an index in a database server)."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise InputError(root, "no such folder", "a folder of media files to index")
    if is_server_url(index):
        return root_path.resolve(), None
    folder = Path(index).absolute()
    if folder.exists() and not folder.is_dir():
        raise InputError(index, "is a file", "an index folder (created when missing)")
    if folder.is_dir() and not (folder / DB_FILE).exists():
        strangers = sorted(p.name for p in folder.iterdir() if p.name not in (LOCK_FILE, f".{DB_FILE}.creating"))
        if strangers:
            raise InputError(index, f"is a folder of other files ({', '.join(strangers[:3])}, …), not an index",
                             "a new or empty folder for the index, or an existing index")
    return root_path.resolve(), folder


def plan_changes(store: IndexStore, root: Path, known: dict[str, KnownFile], modalities: Sequence[str],
                 skip: Sequence[Path] = (), follow_symlinks: bool = False) -> Plan:
    """Which files to (re-)embed, which indexed paths are gone, how many files the model cannot embed, which
    entries are not indexable, and which files failed before and have not changed since (not retried)."""
    failures = store.known_failures(str(root))
    todo, seen, skipped, unchanged = [], set(), Counter(), 0
    skipped_files, still_failed = [], []
    for found in walk_media(root, skip, follow_symlinks):
        if isinstance(found, SkippedFile):
            skipped_files.append((found.path, found.reason))
            continue
        if found.modality not in modalities:
            skipped[found.modality] += 1
            continue
        seen.add(found.path)
        old = known.get(found.path)
        failure = failures.get(found.path)
        if old is not None and (old.size, old.mtime_ns) == (found.size, found.mtime_ns):
            unchanged += 1
        elif old is None and failure is not None and failure[:2] == (found.size, found.mtime_ns):
            still_failed.append((found.path, failure[2]))  # failed before and not modified since: not retried
        else:
            todo.append(found)
    removed = sorted((set(known) | set(failures)) - seen)
    return Plan(todo, removed, unchanged, dict(skipped), skipped_files, still_failed)


def _batches(files: list[FoundFile], size: int) -> Iterator[tuple[str, list[FoundFile]]]:
    """Same-modality runs of at most `size` files."""
    groups: dict[str, list[FoundFile]] = defaultdict(list)
    for found in files:
        groups[found.modality].append(found)
    for modality, group in groups.items():
        for start in range(0, len(group), size):
            yield modality, group[start : start + size]


_Prepared = tuple[str, list[FoundFile], list[MediaInfo], list[MediaInfo], list[tuple[str, int, int, str]],
                  list[torch.Tensor]]
"""A decoded batch: modality, its files, new or changed ones, re-stamped ones, failures, and input tensors."""


def _embed_all(store: IndexStore, model: OmniBind, todo: list[FoundFile], known: dict[str, KnownFile], batch_size: int,
               report: UpdateReport, show_progress: bool, step: StepHook, follow_symlinks: bool = False) -> None:
    with progress_bar(disable=not show_progress) as progress:
        task = progress.add_task("indexing", total=len(todo), unit="files")

        def prepare(run: tuple[str, list[FoundFile]]) -> _Prepared:
            """Hash, describe and decode one batch (on a prefetch thread while the previous one is embedded)."""
            modality, batch = run
            fresh, restamped, failed, tensors = [], [], [], []
            for found in batch:
                try:
                    info = describe(found, file_hash(found, follow_symlinks))
                    old = known.get(found.path)
                    if old is not None and old.sha256 == info.sha256:
                        restamped.append(info)
                        continue
                    tensors.append(model.processors[modality].one(found.path))
                    fresh.append(info)
                except Exception as err:  # a decoder boundary: no file may stop the run
                    failed.append((found.path, found.size, found.mtime_ns, failure_reason(found.path, err)))
            return modality, batch, fresh, restamped, failed, tensors

        for modality, batch, fresh, restamped, failed, tensors in prefetch(_batches(todo, batch_size), prepare):
            vectors = _embed(model, modality, tensors)
            step("batch-embedded")
            with store.transaction() as db:
                if fresh:
                    store.add_items(db, fresh, vectors)
                store.touch_items(db, restamped)
                store.add_failures(db, failed)
            step("batch-committed")
            report.added += sum(info.path not in known for info in fresh)
            report.changed += sum(info.path in known for info in fresh)
            report.restamped += len(restamped)
            report.failed += [(path, error) for path, _, _, error in failed]
            progress.advance(task, len(batch))


def failure_reason(path: str, err: BaseException) -> str:
    """One line naming the file and what went wrong (InputErrors already name it; others are named here)."""
    if isinstance(err, InputError):
        return str(err)
    detail = (err.strerror if isinstance(err, OSError) and err.strerror else str(err)) or type(err).__name__
    return f"{path}: cannot be indexed ({type(err).__name__}: {detail})"


@torch.no_grad()
def _embed(model: OmniBind, modality: str, tensors: list[torch.Tensor]) -> np.ndarray:
    if not tensors:
        return np.zeros((0, model.config.embed_dim), dtype=np.float32)
    return model.encode(modality, torch.stack(tensors)).float().cpu().numpy()


def _current_vectors(store: IndexStore, embed_dim: int, options: dict[str, Any],
                     step: StepHook) -> dict[str, SearchInfo]:
    """Rebuild and save the vector cache unless the one on disk already matches this generation and options (a
    server store searches its vectors itself: its writer builds the index of a new modality in the database)."""
    own = store.own_vectors(embed_dim)
    if own is not None:
        return dict(own.describe())
    folder = store.folder
    if folder is None:
        raise InputError(store.name, "has no vector search of its own and no index folder for a vector cache",
                         "an index folder, or a server store that searches its own vectors")
    saved = backend.reuse(folder, store.generation(), embed_dim, options)
    if saved is not None:
        return dict(saved)
    built = backend.build(store, embed_dim, options)
    built.save(folder, before_publish=lambda: step("vectors-written"))
    return dict(built.describe())

