"""Captioning evaluation while a `loss.kind: captioning` run trains: the run's towers, projections and decoder,
seen as a Generator (shared, not copied), caption each eval split with the run's own tasks, as `omnibind eval`
captions with the run's checkpoint. The baselines are scored when the run has what they need: `most_frequent`
reads the training shards' captions (not a synthetic run's), `nearest_caption` the run's own model, but only when
a contrastive objective trains it beside the captions (`loss.options.contrastive`; otherwise its pooled
embeddings are untrained, and the baseline is skipped, saying so in the log)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import omnibind.modalities as registry
from omnibind.objectives.captioning import CaptioningObjective

if TYPE_CHECKING:  # the evaluation modules (and pycocoevalcap) load when a run first evaluates
    from omnibind.evaluate.captioning import CaptionSettings
    from omnibind.evaluate.examples import EvalExample
    from omnibind.models.model import OmniBind
    from omnibind.objectives.base import Objective
    from omnibind.train.config import TrainConfig

log = logging.getLogger("omnibind.train")
TEXT = registry.TEXT.name


def caption_captions(spec: str | Sequence[str], label_field: str) -> list[EvalExample]:
    """The training examples as the baselines read them: key, caption and which media each has (media bytes
    dropped as they are read, so a large training set is not held in memory)."""
    from omnibind.evaluate.data import iter_examples
    from omnibind.evaluate.examples import EvalExample

    return [EvalExample(e.key, {m: (v if m == TEXT else True) for m, v in e.inputs.items() if v is not None})
            for e in iter_examples(spec, label_field) if e.inputs.get(TEXT) is not None]


class CaptionEvalSetup:
    """Builds the captioning settings of each evaluation of one run (training captions read once)."""

    def __init__(self, cfg: TrainConfig, objective: Objective) -> None:
        self.cfg = cfg
        self.objective = objective if isinstance(objective, CaptioningObjective) else None
        self._train: list[EvalExample] | None = None

    @property
    def active(self) -> bool:
        """Whether the run trains a captioner (otherwise evaluation is the embedding evaluators' alone)."""
        return self.objective is not None

    def training_examples(self) -> list[EvalExample]:
        """The training captions (none for synthetic data), read on first use."""
        if self._train is None:
            data = self.cfg.data
            if data.kind == "synthetic" or not data.shards:
                log.info("captioning eval: most_frequent baseline skipped: data.kind is synthetic "
                         "(no training captions to count)")
                self._train = []
            else:
                self._train = caption_captions(data.shards, self.cfg.eval.label_field)
                log.info("captioning eval: %d training captions for the baselines", len(self._train))
        return self._train

    def settings(self, model: OmniBind) -> CaptionSettings | None:
        """The settings that make `evaluate_splits(model, ...)` also caption with the run's generator view."""
        from omnibind.evaluate.captioning import CaptionSettings

        if self.objective is None:
            return None
        baseline = None
        if self.objective.inner is not None:
            baseline = model
        elif self._train is None:
            log.info("captioning eval: nearest_caption baseline skipped: the run trains no contrastive objective "
                     "(loss.options.contrastive), so its towers' embeddings are not trained to match captions")
        train = self.training_examples()
        return CaptionSettings(tasks=self.objective.options.tasks, train=train,
                               baseline_model=baseline if train else None,
                               generator=self.objective.generator(model))
