"""Tower properties: shapes, batch independence, position resampling (vs transformers), pooling."""

from __future__ import annotations

import pytest
import torch

from omnibind.config import AudioConfig, ImageConfig, TextConfig
from omnibind.modalities import AudioSettings
from omnibind.models import audio, text, vit
from omnibind.models.patches import resample_positions

SMALL = dict(width=32, depth=2, heads=4, mlp_dim=64)
TOL = 1e-5


def image_tower(embed_dim: int = 32, **overrides) -> vit.Model:
    torch.manual_seed(0)
    return vit.Model(ImageConfig(**{**SMALL, "image_size": 32, "patch_size": 8, **overrides}), embed_dim).eval()


@pytest.mark.parametrize("pool", ["map", "gap"])
def test_image_tower_shapes_and_batch_independence(pool: str) -> None:
    tower = image_tower(pool=pool)
    x = torch.randn(3, 3, 32, 32)
    out = tower(x)
    assert out.shape == (3, 32)
    assert (out[1:2] - tower(x[1:2])).abs().max() < TOL


def test_projection_maps_to_embed_dim() -> None:
    tower = image_tower(embed_dim=16, projection=True)
    assert tower(torch.randn(2, 3, 32, 32)).shape == (2, 16)


def test_other_resolution_resamples_positions() -> None:
    tower = image_tower()
    x = torch.randn(2, 3, 48, 48)
    on_the_fly = tower(x)
    tower.patch_embed.resize((6, 6))
    assert tower.patch_embed.pos_embed.shape == (1, 36, 32)
    assert (tower(x) - on_the_fly).abs().max() < TOL


def test_resampling_to_same_grid_is_identity() -> None:
    pos = torch.randn(1, 16, 8)
    assert (resample_positions(pos, (4, 4), (4, 4)) - pos).abs().max() < 1e-6


def test_resampling_matches_transformers_interpolation() -> None:
    """Our bicubic resampling of positions equals transformers' interpolate_pos_encoding."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                             num_hidden_layers=1, image_size=32, patch_size=8)
    embeddings = transformers.models.siglip.modeling_siglip.SiglipVisionEmbeddings(config)
    pos = embeddings.position_embedding.weight.detach().unsqueeze(0)
    expected = embeddings.interpolate_pos_encoding(torch.zeros(1, 49, 32), 56, 56)
    assert (resample_positions(pos, (4, 4), (7, 7)) - expected).abs().max() < TOL


def test_text_tower_pools_last_position_and_rejects_long_input() -> None:
    torch.manual_seed(0)
    tower = text.Model(TextConfig(**SMALL, vocab_size=50, max_len=8), 32).eval()
    ids = torch.randint(0, 50, (2, 8))
    out = tower(ids)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 50
    assert out.shape == (2, 32)
    assert (tower(changed) - out).abs().max() > 1e-4  # the pooled position sees its own token
    with pytest.raises(ValueError, match="max_len=8"):
        tower(torch.zeros(1, 9, dtype=torch.long))


def test_audio_tower_shapes_and_other_lengths() -> None:
    torch.manual_seed(0)
    config = AudioConfig(**SMALL, front_end=AudioSettings(n_mels=32, clip_seconds=1.28), patch_size=8)
    tower = audio.Model(config, 32).eval()
    assert config.num_frames == 128 and tower.patch_embed.grid == (4, 16)
    mel = torch.randn(2, 32, 128)
    assert tower(mel).shape == (2, 32)
    assert tower(torch.randn(2, 32, 70)).shape == (2, 32)  # shorter clip: positions resampled, tail dropped
    assert (tower(mel[:1]) - tower(mel)[:1]).abs().max() < TOL
