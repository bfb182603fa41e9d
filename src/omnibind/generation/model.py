"""The generator: media towers' patch tokens, projected to the decoder's width, then the prompt, form a
prefix ([image tokens][audio tokens][prompt tokens]) that a Gemma-style decoder continues with text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.generation.beam import beam_search
from omnibind.generation.config import GeneratorConfig
from omnibind.generation.decoder import Decoder
from omnibind.generation.decoding import Decoding, decode, trim
from omnibind.generation.mask import prefix_lm_mask
from omnibind.generation.prefix import DecoderInput, append_suffix, left_pad
from omnibind.generation.session import Session
from omnibind.generation.text_ids import Prompts
from omnibind.models.model import build_tower

TEXT = registry.TEXT.name  # the prompt is read by the decoder's own embeddings, never by a text tower


class Generator(nn.Module):
    """Media towers + linear projections + decoder; `generate` turns prompts and media into text.

    `processors` (by modality) turn raw media (paths, bytes, PIL images) into tower inputs and `tokenizer`
    turns prompts into ids; neither is saved in the state dict.
    """

    towers: nn.ModuleDict
    project: nn.ModuleDict

    def __init__(self, config: GeneratorConfig, processors: Mapping[str, Any] | None = None,
                 tokenizer: Prompts | None = None) -> None:
        super().__init__()
        self.config = config
        media = {m: c for m, c in config.encoders.towers.items() if m != TEXT}
        self.towers = nn.ModuleDict({m: build_tower(c, config.encoders.embed_dim) for m, c in media.items()})
        self.project = nn.ModuleDict({m: nn.Linear(c.width, config.decoder.width) for m, c in media.items()})
        self.decoder = Decoder(config.decoder)
        self.processors: dict[str, Any] = dict(processors or {})
        self.tokenizer = tokenizer

    @classmethod
    def view(cls, config: GeneratorConfig, towers: Mapping[str, nn.Module], project: nn.ModuleDict, decoder: Decoder,
             processors: Mapping[str, Any] | None = None, tokenizer: Prompts | None = None) -> Generator:
        """A Generator over existing modules, shared, not copied (e.g. a captioning run's towers, projections and
        decoder while it trains): what it generates follows their current weights and train/eval mode. `towers`
        are the media towers it reads, in `config.encoders` order."""
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model.config = config
        order = [m for m in config.encoders.towers if m in towers and m != TEXT]
        model.towers = nn.ModuleDict({m: towers[m] for m in order})
        missing = [m for m in order if m not in project]
        if missing:
            raise InputError("project", f"has no projection for {missing}", f"one per tower among {order}")
        model.project = project
        model.decoder = decoder
        model.processors = dict(processors or {})
        model.tokenizer = tokenizer
        return model

    @property
    def modalities(self) -> tuple[str, ...]:
        """The media whose tokens can open a prefix, in prefix order."""
        return tuple(self.towers.keys())

    def media_tokens(self, modality: str, items: Sequence[Any]) -> list[torch.Tensor]:
        """(n, decoder width) projected patch tokens per item: raw media or preprocessed tensors."""
        if modality not in self.towers:
            raise InputError(modality, "this generator has no such tower", f"one of {', '.join(self.modalities)}")
        tower: nn.Module = self.towers[modality]
        param = next(tower.parameters())
        raw = [i for i, item in enumerate(items) if not isinstance(item, torch.Tensor)]
        inputs: list[torch.Tensor] = [item if isinstance(item, torch.Tensor) else torch.empty(0) for item in items]
        if raw:
            processor = self.processors.get(modality)
            if processor is None:
                raise InputError(modality, "no preprocessor attached", "a model from omnibind.load() or tensors")
            for i, tensor in zip(raw, processor.batch([items[i] for i in raw]), strict=True):
                inputs[i] = tensor
        batch = torch.stack(inputs).to(param.device, param.dtype)
        patches: torch.Tensor = tower.tokens(batch)  # type: ignore[operator]  # the Tower protocol's tokens()
        tokens: torch.Tensor = self.project[modality](patches)
        return list(tokens.to(self.decoder.embed.weight.dtype))

    def prefix(self, prompt_ids: Sequence[Sequence[int]], media: Mapping[str, Sequence[Any | None]] | None = None
               ) -> DecoderInput:
        """The left-padded batch of prefixes: each example's media tokens (in tower order, absent ones skipped),
        then its prompt ids' embeddings."""
        batch = len(prompt_ids)
        if batch == 0:
            raise InputError("prompts", "none given", "at least one prompt (an empty string reads media alone)")
        pieces: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        for modality, items in (media or {}).items():
            if modality not in self.towers:
                raise InputError(modality, "this generator has no such tower", f"one of {', '.join(self.modalities)}")
            if len(items) != batch:
                raise InputError(modality, f"{len(items)} items for {batch} prompts", "one item (or None) per prompt")
        for modality in self.modalities:
            given = (media or {}).get(modality)
            present = [i for i, item in enumerate(given or ()) if item is not None]
            if present:
                chosen = [given[i] for i in present] if given is not None else []
                for i, tokens in zip(present, self.media_tokens(modality, chosen), strict=True):
                    pieces[i].append(tokens)
        weight = self.decoder.embed.weight
        lengths = [len(ids) for ids in prompt_ids]
        flat = torch.tensor([i for ids in prompt_ids for i in ids], dtype=torch.long, device=weight.device)
        self._check_ids(flat, "prompt ids")
        for i, embeds in enumerate(torch.split(self.decoder.embed_tokens(flat[None])[0], lengths)):
            at = self._placeholder(prompt_ids[i], bool(pieces[i]), i)
            if at is None:
                pieces[i].append(embeds)
            else:  # the media tokens replace the placeholder: [text before][media][BOS prompt "\n"]
                pieces[i] = [embeds[:at], *pieces[i], embeds[at + 1:]]
        return left_pad(pieces)

    def _placeholder(self, ids: Sequence[int], has_media: bool, row: int) -> int | None:
        """Where an example's media tokens go inside its prompt ids: the position of the tokenizer's image
        placeholder id (PaliGemma's `<image>`), or None (they open the prefix)."""
        marker = getattr(self.tokenizer, "image_id", None)
        if marker is None:
            return None
        found = [k for k, t in enumerate(ids) if int(t) == marker]
        if not found:
            return None
        if len(found) > 1 or not has_media:
            what = f"{len(found)} placeholders" if len(found) > 1 else "a placeholder but no media"
            raise InputError(f"prompt {row}", f"has {what} (id {marker})", "one placeholder, and media to put there")
        return found[0]

    def _check_ids(self, ids: torch.Tensor, what: str) -> None:
        """Refuse ids outside the decoder's vocabulary (an embedding lookup would fail without naming them)."""
        vocab = self.config.decoder.vocab_size
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise InputError(what, f"ids range over [{int(ids.min())}, {int(ids.max())}]", f"0 ≤ id < {vocab}")

    def forward(self, prefix: DecoderInput, suffix: torch.Tensor | None = None,
                suffix_valid: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L + S, vocab) logits at every position of prefix + (B, S) suffix ids, recomputed without a cache:
        full attention over the prefix, causal over the suffix (right-padded where `suffix_valid` is False)."""
        sequence = prefix
        if suffix is not None:
            self._check_ids(suffix, "suffix ids")
            sequence = append_suffix(prefix, self.decoder.embed_tokens(suffix), suffix_valid)
        mask = prefix_lm_mask(sequence.valid, sequence.prefix, sequence.prefix)
        return self.decoder.logits(self.decoder(sequence.embeds, sequence.positions, mask))

    @torch.no_grad()
    def generate_ids(self, prompt_ids: Sequence[Sequence[int]], media: Mapping[str, Sequence[Any | None]] | None = None,
                     settings: Decoding | None = None) -> list[list[int]]:
        """Generated ids per example (EOS and what follows dropped) for prompt ids and media items."""
        settings = settings or Decoding()
        session = Session(self.decoder, self.prefix(prompt_ids, media), settings.max_new_tokens)
        run = beam_search if settings.beams > 1 else decode
        return trim(run(session, settings, self.config.eos_id, self.config.pad_id), self.config.eos_id)

    @torch.no_grad()
    def generate(self, prompts: str | Sequence[str] = "", *, max_new_tokens: int = 32, beams: int = 1,
                 sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                 length_penalty: float = 1.0, **media: Any) -> list[str]:
        """Text for each prompt, reading the media given by modality (`image="cat.jpg"`, `audio=[a, b]`: one item
        or one per prompt, None where an example has none), e.g. `model.generate("caption en", image=path)`."""
        if self.tokenizer is None:
            raise InputError("tokenizer", "this generator has no prompt tokenizer", "a model from omnibind.load()")
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        batched = {m: self._per_prompt(m, items, len(texts)) for m, items in media.items() if items is not None}
        settings = Decoding(max_new_tokens, beams, sample, temperature, top_p, seed, length_penalty)
        ids = self.generate_ids([self.tokenizer.prompt_ids(t) for t in texts], batched, settings)
        return [self.tokenizer.decode(row) for row in ids]

    def _per_prompt(self, modality: str, items: Any, prompts: int) -> list[Any]:
        """One media item per prompt: a single item (or one example's tensor) is shared by every prompt; a list,
        or a tensor with a batch axis, must have one entry per prompt."""
        if modality not in self.towers:
            raise InputError(modality, "this generator has no such tower", f"one of {', '.join(self.modalities)}")
        spec = registry.get(modality).input_spec(self.config.encoders.towers[modality])
        batched = isinstance(items, torch.Tensor) and items.dim() == len(spec.shape) + 1
        if isinstance(items, list | tuple) or batched:
            listed = list(items)
            if len(listed) != prompts:
                raise InputError(modality, f"{len(listed)} items for {prompts} prompts", "one per prompt")
            return listed
        return [items] * prompts
