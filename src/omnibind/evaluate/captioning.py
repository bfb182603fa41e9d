"""The `captioning` evaluator: a Generator writes text for each distinct picture / sound of a split (its task's
prompt, greedy or beam search), scored with CIDEr-D and BLEU-4 (pycocoevalcap) against every caption the split
gives that content, beside two baselines scored the same way: the nearest training caption under a contrastive
model, and the most frequent training caption. Question prompts (ending in "?") also get exact-match accuracy.

Each example takes the first task whose media and text it has and whose key patterns it matches, as in training
(`loss.options.tasks`); without tasks, every medium of the generator is read with one prompt. Options reach the
registered factory through `caption_settings(...)` (a context), so `omnibind eval` and plugins share one seam."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.evaluate.captioning_metrics import EXACT, caption_scores, exact_match
from omnibind.evaluate.examples import EvalExample
from omnibind.evaluate.registry import Templates
from omnibind.evaluate.retrieval import content_id
from omnibind.generation.model import Generator
from omnibind.objectives.captioning import CaptioningOptions, Task
from omnibind.yamlconfig import load_yaml

TEXT = registry.TEXT.name
DEFAULT_PROMPT = "caption en"  # PaliGemma's captioning prefix, as `omnibind caption` uses
GENERATED, NEAREST, FREQUENT = "generated", "nearest_caption", "most_frequent"
"""The systems scored per task: the generator and the two baselines."""


class Embedder(Protocol):
    """What the nearest-caption baseline needs of a contrastive model (OmniBind satisfies it)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        """The towers it has."""
        ...

    def encode(self, modality: str, inputs: Any, normalize: bool = True) -> torch.Tensor:
        """(N, D) embeddings of raw inputs of one modality."""
        ...


@dataclass(frozen=True)
class CaptionSettings:
    """How the captioning evaluator generates and what its baselines read (`train`: training examples)."""

    tasks: tuple[Task, ...] | None = None
    prompt: str = DEFAULT_PROMPT
    beams: int = 1
    max_new_tokens: int = 32
    batch_size: int = 16
    train: Sequence[EvalExample] = ()
    baseline_model: Embedder | None = None
    keep: int = 6
    generator: Generator | None = None
    """What captions when the evaluated model is an embedding model: a captioning run's trained modules seen as a
    Generator (`CaptioningObjective.generator`); metrics and examples are written beside the embedding ones."""

    def __post_init__(self) -> None:
        for name in ("beams", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(name, f"is {getattr(self, name)}", "an integer ≥ 1")
        if self.keep < 0:
            raise InputError("keep", f"is {self.keep}", "an integer ≥ 0")


_settings: ContextVar[CaptionSettings | None] = ContextVar("caption_settings", default=None)


@contextmanager
def caption_settings(settings: CaptionSettings) -> Iterator[CaptionSettings]:
    """Evaluate with these captioning settings inside the block (the registered factory reads them)."""
    token = _settings.set(settings)
    try:
        yield settings
    finally:
        _settings.reset(token)


def tasks_from_config(path: str | Path) -> tuple[Task, ...]:
    """The `loss.options.tasks` of a captioning training config (a run's config.yaml or configs/caption_*.yaml)."""
    data = load_yaml(path)
    loss = data.get("loss")
    options = loss.get("options") if isinstance(loss, dict) else None
    if not isinstance(options, dict) or "tasks" not in options:
        raise InputError(path, "has no loss.options.tasks", "a captioning training config")
    return CaptioningOptions.parse({"tasks": options["tasks"]}).tasks


def task_names(tasks: Sequence[Task]) -> list[str]:
    """A metric-name part per task, e.g. "audio.what_is_said" (a number appended when two would clash)."""
    names: list[str] = []
    for task in tasks:
        slug = re.sub(r"[^a-z0-9]+", "_", task.prompt.lower()).strip("_") or "no_prompt"
        name = f"{'+'.join(task.media)}.{slug}"
        names.append(name if name not in names else f"{name}_{len(names)}")
    return names


def is_question(prompt: str) -> bool:
    """Question prompts (short answers) get exact-match accuracy."""
    return prompt.rstrip().endswith("?")


def task_of(example: EvalExample, tasks: Sequence[Task]) -> int | None:
    """Index of the first task the example's media, text and key satisfy (as the training objective picks)."""
    present = {m: v is not None for m, v in example.inputs.items()}
    return next((i for i, t in enumerate(tasks) if t.applies(present, example.key)), None)


@dataclass
class CaptionItem:
    """One distinct media content under one task, with every caption the split gives it."""

    task: int
    example: EvalExample
    references: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


def caption_items(examples: Sequence[EvalExample], tasks: Sequence[Task]) -> list[CaptionItem]:
    """Examples grouped by (task, media content): a picture shared by several examples is captioned once and
    scored against all their captions."""
    items: dict[tuple[int, tuple[str, ...]], CaptionItem] = {}
    for example in examples:
        index = task_of(example, tasks)
        if index is None:
            continue
        key = (index, tuple(content_id(m, example.inputs[m]) for m in tasks[index].media))
        item = items.setdefault(key, CaptionItem(index, example))
        text = str(example.inputs[TEXT])
        if text not in item.references:
            item.references.append(text)
    return list(items.values())


def most_frequent(captions: Sequence[str]) -> str:
    """The most frequent caption (ties: the one seen first)."""
    counts = Counter(captions)
    return max(counts, key=lambda c: counts[c])  # max keeps the first of equal counts, in insertion order


@torch.no_grad()
def nearest_captions(model: Embedder, task: Task, items: Sequence[CaptionItem], captions: Sequence[str],
                     batch_size: int = 64) -> list[str]:
    """For each item, the caption whose embedding is closest to its media's (cosine, summed over the task's media
    the model has)."""
    media = [m for m in task.media if m in model.modalities]
    if TEXT not in model.modalities or not media:
        raise InputError("baseline model", f"has towers {list(model.modalities)}",
                         f"a text tower and one of {list(task.media)} for the nearest-caption baseline")
    pool = list(dict.fromkeys(captions))
    text = _embed(model, TEXT, pool, batch_size)
    scores = sum(_embed(model, m, [i.example.inputs[m] for i in items], batch_size) @ text.T for m in media)
    assert isinstance(scores, torch.Tensor)
    return [pool[j] for j in scores.argmax(dim=1).tolist()]


def _embed(model: Embedder, modality: str, sources: Sequence[Any], batch_size: int) -> torch.Tensor:
    """(N, D) float32 embeddings in batches."""
    return torch.cat([model.encode(modality, list(sources[s:s + batch_size])).float().cpu()
                      for s in range(0, len(sources), batch_size)])


@dataclass
class Shown:
    """One captioned item kept for the report: its example, the task's media and prompt, references and texts."""

    task: str
    prompt: str
    media: tuple[str, ...]
    example: EvalExample
    references: list[str]
    texts: dict[str, str]


class CaptioningEval:
    """Generate for every item of the split, score it and the baselines per task; metrics are named
    "captioning/<task>/<system>/<metric>" (systems: generated, nearest_caption, most_frequent)."""

    def __init__(self, examples: Sequence[EvalExample], tasks: Sequence[Task], settings: CaptionSettings,
                 name: str = "captioning", generator: Generator | None = None) -> None:
        self.tasks, self.settings, self.name, self.generator = list(tasks), settings, name, generator
        self.items = caption_items(examples, self.tasks)
        self.names = task_names(self.tasks)
        self.shown: list[Shown] = []

    def run(self, model: Generator) -> dict[str, float]:
        """Generate, add the baselines, score; keeps `shown` (a few items per task) for the report. With a
        `generator` of its own, that one captions (the model evaluated is then an embedding model)."""
        model = self.generator if self.generator is not None else model
        out: dict[str, float] = {}
        self.shown = []
        for index, task in enumerate(self.tasks):
            items = [i for i in self.items if i.task == index]
            if not items:
                continue
            self._generate(model, task, items)
            self._baselines(index, items)
            prefix = f"{self.name}/{self.names[index]}"
            references = {str(n): item.references for n, item in enumerate(items)}
            for system in (GENERATED, NEAREST, FREQUENT):
                if system not in items[0].texts:
                    continue
                candidates = {str(n): item.texts[system] for n, item in enumerate(items)}
                scores = caption_scores(references, candidates)
                if is_question(task.prompt):
                    scores[EXACT] = exact_match(references, candidates)
                out.update({f"{prefix}/{system}/{k}": v for k, v in scores.items()})
            out[f"{prefix}/items"] = float(len(items))
            self.shown += [Shown(self.names[index], task.prompt, task.media, items[p].example, items[p].references,
                                 dict(items[p].texts)) for p in spread(len(items), self.settings.keep)]
        return out

    def _generate(self, model: Generator, task: Task, items: list[CaptionItem]) -> None:
        """Each item's generated text, in batches of the same prompt."""
        size = self.settings.batch_size
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            media: dict[str, Any] = {m: [i.example.inputs[m] for i in chunk] for m in task.media}
            texts = model.generate([task.prompt] * len(chunk), beams=self.settings.beams,
                                   max_new_tokens=self.settings.max_new_tokens, **media)
            for item, text in zip(chunk, texts, strict=True):
                item.texts[GENERATED] = text

    def _baselines(self, index: int, items: list[CaptionItem]) -> None:
        """The most frequent and (with a baseline model) the nearest caption of the training examples that take
        this task (the first that applies to them, as in training)."""
        task = self.tasks[index]
        captions = [str(e.inputs[TEXT]) for e in self.settings.train if task_of(e, self.tasks) == index]
        if not captions:
            return
        frequent = most_frequent(captions)
        for item in items:
            item.texts[FREQUENT] = frequent
        if self.settings.baseline_model is not None:
            nearest = nearest_captions(self.settings.baseline_model, task, items, captions, self.settings.batch_size)
            for item, text in zip(items, nearest, strict=True):
                item.texts[NEAREST] = text


def spread(count: int, keep: int) -> list[int]:
    """Up to `keep` indices spread evenly over `count` items, first and last included (the report's examples)."""
    keep = min(keep, count)
    if keep <= 1:
        return list(range(keep))
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def resolve_tasks(settings: CaptionSettings, model: Generator) -> tuple[Task, ...]:
    """The settings' tasks (each medium checked against the generator's towers), or the prompt for each medium."""
    if settings.tasks is None:
        return tuple(Task(settings.prompt, (m,)) for m in model.modalities)
    for n, task in enumerate(settings.tasks):
        missing = [m for m in task.media if m not in model.modalities]
        if missing:
            raise InputError(f"tasks[{n}].media", f"names {missing}, which this generator has no tower for",
                             f"media among {list(model.modalities)}")
    return settings.tasks


def captioning_evaluators(examples: Sequence[EvalExample], model: Any, templates: Templates) -> list[Any]:
    """The captioning evaluator for a Generator, or for an embedding model when the settings give a generator
    (a captioning run evaluated while it trains); nothing otherwise."""
    settings = _settings.get() or CaptionSettings()
    generator = model if isinstance(model, Generator) else settings.generator
    if generator is None:
        return []
    evaluator = CaptioningEval(examples, resolve_tasks(settings, generator), settings,
                               generator=None if generator is model else generator)
    return [evaluator] if evaluator.items else []


def shown_records(shown: Sequence[Shown], item: Any) -> list[dict[str, Any]]:
    """The eval JSON's "captions" entries; `item(example, modality)` saves a medium as the report shows it."""
    return [{"task": s.task, "prompt": s.prompt, "key": s.example.key,
             "media": [item(s.example, m) for m in s.media], "references": s.references, "texts": s.texts}
            for s in shown]

