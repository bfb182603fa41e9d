"""Captioning (CapPa, PaliGemma): a Gemma-style decoder reads [media tokens][prompt] and learns the caption that
follows, by cross-entropy on the suffix alone (the prefix and padding are never targets), under PaliGemma's
prefix-LM mask. The objective owns the decoder and the projections of the towers' patch tokens; the trainer
attaches them to the model so that they are optimised, reduced, checkpointed and resumed with the towers.

Captions are the text tower's ids of each example's text (one SentencePiece vocabulary, plus a BOS id after it);
each example gets the first configured task whose media it has and whose key patterns its key matches. Another
registered objective (e.g. sigmoid) may be added beside it, weighted (`loss.options`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.generation.config import DecoderConfig, GeneratorConfig
from omnibind.generation.decoder import Decoder
from omnibind.generation.mask import prefix_lm_mask
from omnibind.generation.prefix import append_suffix, left_pad
from omnibind.generation.text_ids import EOS_ID, PAD_ID, SentencePiecePrompts, vocab_size
from omnibind.objectives.base import Batch, Objective, ObjectiveSetup, Outputs
from omnibind.objectives.registry import build_objective
from omnibind.preprocess.text import Tokenizer

if TYPE_CHECKING:
    from omnibind.generation.model import Generator
    from omnibind.models.model import OmniBind

TASK_KEY = "caption_task"
"""The (B,) long tensor `prepare` adds to the batch: each example's task index, -1 where none applies."""
DECODER_SHAPE = {"width": 256, "depth": 2, "heads": 4, "kv_heads": 1, "head_dim": 64, "mlp_dim": 1024}
"""A small decoder by default (loss.options.decoder overrides any field but vocab_size, set by the text tower)."""
OPTION = "loss.options"
TEXT = registry.TEXT.name


@dataclass(frozen=True)
class Task:
    """A prompt, the media whose tokens open its prefix, and optional fnmatch patterns on the example's key: it
    must match one of `keys` (when given) and none of `skip`."""

    prompt: str
    media: tuple[str, ...]
    keys: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def applies(self, present: Mapping[str, bool], key: str | None) -> bool:
        """True when the example has every medium (and text) and its key passes the patterns."""
        if not all(present.get(m, False) for m in (*self.media, TEXT)):
            return False
        if self.skip and key is not None and any(fnmatch.fnmatchcase(key, p) for p in self.skip):
            return False
        return not self.keys or (key is not None and any(fnmatch.fnmatchcase(key, p) for p in self.keys))


@dataclass(frozen=True)
class CaptioningOptions:
    """loss.options of the captioning objective."""

    tasks: tuple[Task, ...] = (Task("caption en", (registry.IMAGE.name,)),)
    decoder: Mapping[str, Any] = field(default_factory=lambda: dict(DECODER_SHAPE))
    weight: float = 1.0
    contrastive: str | None = None
    contrastive_weight: float = 1.0
    init_decoder: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> CaptioningOptions:
        """Options from the config's plain values, with errors naming the field and what was expected."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(OPTION, f"unknown field(s) {unknown} for loss.kind captioning", f"among {sorted(known)}")
        values: dict[str, Any] = dict(options)
        if "tasks" in values:
            values["tasks"] = tuple(_task(t, i) for i, t in enumerate(_list(values["tasks"], f"{OPTION}.tasks")))
            if not values["tasks"]:
                raise InputError(f"{OPTION}.tasks", "is empty", "at least one {prompt, media} task")
        shape = {**DECODER_SHAPE, **_mapping(values.get("decoder", {}), f"{OPTION}.decoder")}
        allowed = {f.name for f in fields(DecoderConfig)} - {"vocab_size"}
        bad = sorted(set(shape) - allowed)
        if bad:
            raise InputError(f"{OPTION}.decoder", f"unknown or fixed field(s) {bad}",
                             f"among {sorted(allowed)} (vocab_size follows the text tower)")
        values["decoder"] = shape
        for name in ("weight", "contrastive_weight"):
            if not isinstance(values.get(name, 1.0), int | float) or values.get(name, 1.0) < 0:
                raise InputError(f"{OPTION}.{name}", f"is {values[name]!r}", "a number ≥ 0")
        if values.get("contrastive") == "captioning":
            raise InputError(f"{OPTION}.contrastive", "is 'captioning'", "a contrastive objective such as 'sigmoid'")
        return cls(**values)


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InputError(where, f"is {type(value).__name__}", "a list")
    return list(value)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(where, f"is {type(value).__name__}", "a mapping of field: value")
    return dict(value)


def _task(value: Any, index: int) -> Task:
    """One task from {prompt: str, media: [modality, ...], keys: [glob, ...], skip: [glob, ...]}."""
    where = f"{OPTION}.tasks[{index}]"
    data = _mapping(value, where)
    extra = sorted(set(data) - {"prompt", "media", "keys", "skip"})
    if extra or not isinstance(data.get("prompt"), str):
        raise InputError(where, f"has {sorted(data)}",
                         "{prompt: str, media: [image|audio, ...], keys: [glob, ...], skip: [glob, ...]}")
    media = tuple(str(m) for m in _list(data.get("media", []), f"{where}.media"))
    if not media or TEXT in media:
        raise InputError(f"{where}.media", f"is {list(media)}", "one or more media towers (not text), e.g. [image]")
    keys, skip = (tuple(str(k) for k in _list(data.get(f, []), f"{where}.{f}")) for f in ("keys", "skip"))
    return Task(data["prompt"], media, keys, skip)


def suffix_valid(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B, L) True up to and including each row's first EOS (the whole row when it has none)."""
    is_eos = ids == eos_id
    last = torch.where(is_eos.any(1), is_eos.int().argmax(1), ids.shape[1] - 1)
    return torch.arange(ids.shape[1], device=ids.device)[None, :] <= last[:, None]


def next_token_targets(ids: torch.Tensor, valid: torch.Tensor, prefix: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (B, T) = the id at t + 1, and the loss mask: True where that next id is a real suffix token (never a
    prefix or padding position, so prefix ids, whatever they are, are never targets)."""
    labels = torch.cat([ids[:, 1:], ids.new_full((ids.shape[0], 1), PAD_ID)], dim=1)
    target = valid & ~prefix
    mask = torch.cat([target[:, 1:], target.new_zeros((ids.shape[0], 1))], dim=1)
    return labels, mask


def caption_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of (B, T, V) logits at the masked positions, and their number."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), reduction="none")
    return (ce * mask.flatten()).sum(), mask.sum()


class CaptioningObjective(Objective):
    """Cross-entropy of the caption given [media tokens][prompt], averaged over the global batch's caption tokens
    (so several processes equal one), weighted, plus an optional contrastive objective."""

    name = "captioning"
    reads_every_parameter = False  # pooled heads (captioning alone) and the text tower get no gradient

    def __init__(self, setup: ObjectiveSetup) -> None:
        super().__init__(setup)
        self.options = CaptioningOptions.parse(setup.options)
        self.inner: Objective | None = None
        if self.options.contrastive is not None:
            self.inner = build_objective(self.options.contrastive,
                                         ObjectiveSetup(setup.pairs, setup.world_size, setup.chunked))
        media = [m for task in self.options.tasks for m in task.media]
        inner_tokens = self.inner.token_modalities if self.inner is not None else ()
        self.media = tuple(dict.fromkeys(media))
        self.token_modalities = tuple(dict.fromkeys((*self.media, *inner_tokens)))
        self.prompt_ids: list[list[int]] = []
        self.config: GeneratorConfig | None = None
        self.prompts: SentencePiecePrompts | None = None

    def modules(self, model: OmniBind) -> dict[str, nn.Module]:
        """The projections of the tasks' media tokens to the decoder's width, and the decoder (fresh, or
        loss.options.init_decoder's decoder and the projections it has)."""
        towers = model.config.towers
        if TEXT not in towers:
            raise InputError("model.modalities", f"{list(towers)} has no text tower",
                             "text among them: captions are read as the text tower's ids")
        for m in self.media:
            if m not in towers:
                raise InputError(f"{OPTION}.tasks", f"names {m!r}, which the model has no tower for",
                                 f"some of {[t for t in towers if t != TEXT]}")
        text = model.processors.get(TEXT)
        if text is not None and not isinstance(text, Tokenizer):
            raise InputError("model.tokenizer", f"the text tower reads a {type(text).__name__}",
                             "a SentencePiece .model (captioning decodes its pieces)")
        if text is None and any(task.prompt.strip() for task in self.options.tasks):
            raise InputError("model.tokenizer", "the text tower has no tokenizer to read the tasks' prompts with",
                             "a SentencePiece .model (or empty prompts in loss.options.tasks)")
        text_vocab = int(towers[TEXT].vocab_size)  # type: ignore[attr-defined]  # a TextConfig
        self.prompts = SentencePiecePrompts(text, text_vocab)
        self.prompt_ids = [self.prompts.prompt_ids(task.prompt) for task in self.options.tasks]
        start = self._start_from(text_vocab)
        decoder_config = start.config.decoder if start is not None else \
            DecoderConfig(vocab_size=vocab_size(text_vocab), **self.options.decoder)
        self.config = GeneratorConfig(model.config, decoder_config, self.prompts.bos_id, EOS_ID, PAD_ID)
        decoder = Decoder(decoder_config)
        project = nn.ModuleDict({m: nn.Linear(towers[m].width, decoder_config.width) for m in self.media})
        if start is not None:
            decoder.load_state_dict(start.decoder.state_dict())
            for m, linear in project.items():
                if m in start.project and start.project[m].weight.shape == linear.weight.shape:
                    linear.load_state_dict(start.project[m].state_dict())
        return {"project": project, "decoder": decoder}

    def _start_from(self, text_vocab: int) -> Any:
        """The Generator of loss.options.init_decoder (None when the decoder starts fresh)."""
        if self.options.init_decoder is None:
            return None
        from omnibind.checkpoint import load
        from omnibind.generation.model import Generator

        start = load(self.options.init_decoder)
        if not isinstance(start, Generator):
            raise InputError(f"{OPTION}.init_decoder", f"{self.options.init_decoder} holds no decoder",
                             "a generator checkpoint (a captioning run's, or omnibind.save of a Generator)")
        if start.config.decoder.vocab_size != vocab_size(text_vocab):
            raise InputError(f"{OPTION}.init_decoder", f"its vocabulary has {start.config.decoder.vocab_size} ids",
                             f"{vocab_size(text_vocab)}: the text tower's {text_vocab} pieces and BOS")
        return start

    def generator(self, model: OmniBind) -> Generator:
        """A Generator sharing `model`'s media towers and the attached projections and decoder (no copy), with the
        run's prompt tokenizer: what the run's checkpoint loads as, for evaluation while training."""
        from omnibind.generation.model import Generator

        if self.config is None or not hasattr(model, "decoder"):
            raise InputError("model", "has no decoder attached", "the model after modules() was attached to it")
        towers = {m: model.towers[m] for m in self.media}
        project: nn.ModuleDict = model.project  # type: ignore[assignment]  # attached from modules()
        decoder: Decoder = model.decoder  # type: ignore[assignment]
        return Generator.view(self.config, towers, project, decoder, model.processors, self.prompts)

    def checkpoint_sections(self) -> dict[str, Any]:
        """The "decoder" section that makes a run's checkpoint load as a Generator."""
        if self.config is None:
            return {}
        from omnibind.generation.store import SECTION, decoder_section

        return {SECTION: decoder_section(self.config, self.prompts)}

    def prepare(self, batch: Mapping[str, Any]) -> Batch:
        """Each example's task: the first whose media (and text) it has and whose key patterns match its key."""
        n = len(batch[TEXT]) if TEXT in batch else 0
        present: dict[str, list[bool]] = {}
        for m in (*self.media, TEXT):
            if m in batch:
                flags = batch.get(f"{m}_mask")
                present[m] = [True] * n if flags is None else [bool(f) for f in flags]
        keys: Sequence[str | None] = batch.get("key") or [None] * n
        chosen = [next((t for t, task in enumerate(self.options.tasks)
                        if task.applies({m: v[i] for m, v in present.items()}, keys[i])), -1) for i in range(n)]
        return {TASK_KEY: torch.tensor(chosen, dtype=torch.long)}

    def __call__(self, outputs: Outputs, batch: Batch, model: OmniBind) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        caption = self.caption(outputs, batch, model)
        parts = {"caption": caption.detach()}  # unweighted: comparable across runs
        loss = self.options.weight * caption
        if self.inner is not None:
            contrastive, inner_parts = self.inner(outputs, batch, model)
            loss = loss + self.options.contrastive_weight * contrastive
            parts.update(inner_parts)
        return loss, parts

    def caption(self, outputs: Outputs, batch: Batch, model: OmniBind) -> torch.Tensor:
        """The mean caption-token cross-entropy over the global batch (this rank's share of it, times the
        number of ranks, since DDP averages gradients)."""
        decoder: Decoder = model.decoder  # type: ignore[assignment]  # attached from modules()
        project: nn.ModuleDict = model.project  # type: ignore[assignment]
        tasks = batch[TASK_KEY]
        rows = (tasks >= 0).nonzero().flatten().tolist()
        dtype = decoder.embed.weight.dtype  # bf16 towers (autocast) feed the fp32 decoder
        projected = {m: project[m](outputs[f"{m}/tokens"].to(dtype)) for m in self.media if f"{m}/tokens" in outputs}
        ids, valid = batch[TEXT], suffix_valid(batch[TEXT], EOS_ID)
        count = valid[rows].sum().to(torch.float64) if rows else torch.zeros((), dtype=torch.float64)
        world = 1
        if dist.is_initialized() and dist.get_world_size() > 1:  # every rank, every step: a collective
            world = dist.get_world_size()
            count = count.clone()
            dist.all_reduce(count)
        # Tie the result to every trainable module the step reads, so a rank with no caption still backpropagates.
        zero = decoder.embed.weight.sum() * 0 + sum((p.sum() * 0 for p in projected.values()), torch.zeros(()))
        if not rows:  # otherwise the global count is at least this rank's, so positive
            return zero
        prompts = [decoder.embed_tokens(torch.tensor(p, device=ids.device)[None])[0] for p in self.prompt_ids]
        pieces = []
        for i in rows:
            task = self.options.tasks[int(tasks[i])]
            pieces.append([projected[m][i] for m in task.media] + [prompts[int(tasks[i])]])
        prefix = left_pad(pieces)
        length = int(valid[rows].sum(1).max())
        suffix, suffix_ok = ids[rows, :length], valid[rows, :length]
        sequence = append_suffix(prefix, decoder.embed_tokens(suffix), suffix_ok)
        hidden = decoder(sequence.embeds, sequence.positions,
                         prefix_lm_mask(sequence.valid, sequence.prefix, sequence.prefix))
        full_ids = torch.cat([suffix.new_full(prefix.valid.shape, PAD_ID), suffix], dim=1)
        labels, mask = next_token_targets(full_ids, sequence.valid, sequence.prefix)
        start = prefix.valid.shape[1] - 1  # the last prefix position predicts the first caption token
        total, _ = caption_loss(decoder.logits(hidden[:, start:-1]), labels[:, start:-1], mask[:, start:-1])
        return zero + total * world / count.to(total.dtype)
