"""CLAP's audio tower (kind "htsat"): HTSAT, a Swin transformer over log-mel spectrograms, with CLAP's
projection. Numerics as transformers' ClapAudioModel + audio_projection.

Native here: the input BatchNorm over mel bins, the spectrogram-to-image folding, the patch embedding's
forward including feature fusion, the final norm, the pooling (a mean over the final tokens, which is what
transformers' grouped reshape followed by average pooling amounts to) and the projection. An adapter: the
Swin stages (windowed attention with relative position bias, shifted windows, patch merging) and the patch
embedding's and fusion block's layers are transformers' own modules (`ClapAudioStage`, `ClapAudioPatchEmbed`),
built from the checkpoint's audio config; a native copy would be several hundred lines that add nothing but
a second place for bugs. So this tower needs `transformers` installed (`pip install omnibind[clap]`).

Feature fusion ("fusion" truncation, `enable_fusion`): the input has 4 channels (the whole clip shrunk and
three crops). transformers takes an `is_longer` flag per clip; here a clip is "longer" when its crops differ
from its first channel, which is exactly when the feature extractor made crops (a short clip's 4 channels
are one mel, repeated). In eval mode the fused and the plain patch embeddings are both computed and one is
selected per clip, so the graph has no data-dependent shapes (ONNX export); in training, fusion runs on the
longer clips only, as in transformers, so its BatchNorm statistics see the same batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import omnibind.modalities as registry
from omnibind.errors import CheckpointError, InputError
from omnibind.modalities.audio import AudioConfig
from omnibind.modalities.base import InputSpec, Preprocessor
from omnibind.models.clap_text import ClapProjection


def hf_audio_config(config: AudioConfig) -> Any:
    """transformers' ClapAudioConfig from the tower's `options["htsat"]` (the checkpoint's audio_config)."""
    try:
        from transformers import ClapAudioConfig
    except ImportError as err:
        raise CheckpointError("CLAP's HTSAT audio tower uses transformers' Swin stages: pip install "
                              "'omnibind[clap]' (or transformers)") from err
    settings = config.options.get("htsat")
    if not isinstance(settings, dict):
        raise InputError("towers.audio.options.htsat", f"is {settings!r}",
                         "transformers' ClapAudioConfig fields, as omnibind.convert.clap writes them")
    return ClapAudioConfig(**settings)


class Encoder(nn.Module):
    """HTSAT: (B, C, frames, n_mels) CLAP features → (B, tokens, width) final tokens after the last norm."""

    def __init__(self, config: AudioConfig) -> None:
        super().__init__()
        hf_config = hf_audio_config(config)  # first: it names the missing dependency
        from transformers.models.clap.modeling_clap import ClapAudioEncoder

        hf = ClapAudioEncoder(hf_config)
        self.fusion = bool(hf.enable_fusion)
        self.spec_size, self.freq_ratio = int(hf.spec_size), int(hf.freq_ratio)
        self.input_resolutions: list[tuple[int, int]] = [tuple(r) for r in hf.input_resolutions]
        self.batch_norm = hf.batch_norm  # over mel bins
        self.patch_embed = hf.patch_embed  # its layers; its forward is replaced by `embed_patches`
        self.blocks = hf.layers  # the Swin stages
        self.norm = hf.norm
        self.grad_checkpointing = False

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 4:
            raise InputError(registry.AUDIO.name, f"features of shape {tuple(features.shape)}",
                             "(batch, channels, frames, n_mels) CLAP features")
        x = self.batch_norm(features.transpose(1, 3)).transpose(1, 3)
        x = self.embed_patches(self.fold(x), self.longer(features) if self.fusion else None)
        for i, stage in enumerate(self.blocks):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(stage, x, self.input_resolutions[i], False, False, use_reentrant=False)[0]
            else:
                x = stage(x, self.input_resolutions[i], False, False)[0]
        return self.norm(x)

    @staticmethod
    def longer(features: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the clip's crops differ from its first channel (the feature extractor fused a long clip)."""
        return (features[:, 1:] != features[:, :1]).flatten(1).any(dim=1)

    def fold(self, x: torch.Tensor) -> torch.Tensor:
        """Resize to the Swin input (bicubic, as transformers) and fold time into `freq_ratio` rows of
        frequency bands: (B, C, frames, mels) → (B, C, mels · ratio, frames / ratio)."""
        _, _, time, freq = x.shape
        width, height = self.spec_size * self.freq_ratio, self.spec_size // self.freq_ratio
        if time > width or freq > height:
            raise InputError(registry.AUDIO.name, f"{time} frames × {freq} mels",
                             f"at most {width} frames × {height} mels (the checkpoint's spec_size)")
        if time < width:
            x = F.interpolate(x, (width, freq), mode="bicubic", align_corners=True)
        if freq < height:  # transformers resizes to the original frame count here; kept for parity
            x = F.interpolate(x, (time, height), mode="bicubic", align_corners=True)
        b, c, time, freq = x.shape
        x = x.reshape(b, c * self.freq_ratio, time // self.freq_ratio, freq).permute(0, 1, 3, 2)
        return x.reshape(b, c, freq * self.freq_ratio, time // self.freq_ratio)

    def embed_patches(self, x: torch.Tensor, longer: torch.Tensor | None) -> torch.Tensor:
        """Patch embedding (B, C, H, W) → (B, patches, dim); with fusion, the whole-clip channel's patches are
        fused with the three crops' patches for the longer clips."""
        pe = self.patch_embed
        if longer is None:
            out = pe.proj(x)
        else:
            out = pe.proj(x[:, :1])
            if not self.training:
                out = torch.where(longer[:, None, None, None], pe.fusion_model(out, self.local(x, out)), out)
            elif bool(longer.any()):
                idx = longer.nonzero()[:, 0]
                out = out.clone()
                out[idx] = pe.fusion_model(out[idx], self.local(x[idx], out))
        return pe.norm(out.flatten(2).transpose(1, 2))

    def local(self, x: torch.Tensor, global_patches: torch.Tensor) -> torch.Tensor:
        """The three crops' patches, side by side along time and zero-padded to the global patches' width."""
        b, c, h, w = x[:, 1:].shape
        local = self.patch_embed.mel_conv2d(x[:, 1:].reshape(b * c, 1, h, w))
        _, dim, h, w = local.shape
        local = local.view(b, c, dim, h, w).permute(0, 2, 3, 1, 4).flatten(3)
        return F.pad(local, (0, global_patches.shape[-1] - local.shape[-1]))


class Model(nn.Module):
    """HTSAT + mean pooling + CLAP's projection: (B, C, frames, n_mels) → (B, embed_dim)."""

    def __init__(self, config: AudioConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.proj = ClapProjection(config.width, embed_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(features))

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        """HTSAT's final tokens (B, tokens, width), before pooling."""
        return self.encoder(features)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean over the tokens, then CLAP's projection."""
        return self.proj(tokens.mean(dim=1))


def build_preprocessor(config: AudioConfig) -> Preprocessor:
    """CLAP's front end with the checkpoint's truncation, padding and frequency range."""
    from omnibind.preprocess.clap import ClapAudioPreprocessor

    o = config.options
    return ClapAudioPreprocessor(config.front_end, o.get("truncation", "rand_trunc"), o.get("padding", "repeatpad"),
                                 float(o.get("f_min", 0.0)), float(o.get("f_max", 14000.0)))


def input_spec(config: AudioConfig) -> InputSpec:
    """(channels, frames, n_mels): 4 channels with fusion, 1 without; frames = samples // hop + 1."""
    channels = 4 if config.options.get("truncation") == "fusion" else 1
    frames = config.front_end.num_samples // config.front_end.hop_length + 1
    return InputSpec((channels, frames, config.front_end.n_mels), torch.float32)


def summary(config: AudioConfig) -> str:
    """How `omnibind info` describes this tower."""
    return f"CLAP HTSAT ({config.options.get('truncation', 'rand_trunc')}, {config.depth} Swin layers)"
