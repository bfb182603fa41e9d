"""The NaFlex image tower: position resizing equal to F.interpolate(bilinear, antialias) per image, finite
outputs for zero-filled inputs, synthetic batches that stay valid, configs that round-trip, and ONNX export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import omnibind
import omnibind.modalities as registry
from omnibind.config import ImageConfig, ModelConfig, model_config
from omnibind.errors import InputError
from omnibind.models.naflex import pack, resize_positions, unpack

NAFLEX = dict(image_size=16, patch_size=4, max_num_patches=24, resample="bilinear")


def naflex_config(**overrides: object) -> ImageConfig:
    return ImageConfig(width=32, depth=1, heads=4, mlp_dim=64, **{**NAFLEX, **overrides})


def interpolated(grid: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(h, w, D): F.interpolate(bilinear, antialias) of an (S, S, D) grid. PyTorch 2.13's CPU antialias kernel returns
    wrong values for an output one column wide and several rows high (from a 4 × 4 grid to 8 × 1 it repeats the
    first row); resizing the transposed grid to (1, h) gives the same filter, so that case is computed so."""
    if w == 1 and h > 1:
        return interpolated(grid.transpose(0, 1), 1, h).transpose(0, 1)
    image = grid.permute(2, 0, 1)[None]
    return F.interpolate(image, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].permute(1, 2, 0)


@pytest.mark.parametrize("side", [4, 16])
def test_resized_positions_equal_interpolate_per_image(side: int) -> None:
    """Up- and down-sampling, square and not, batched with padding rows (which take the first position)."""
    torch.manual_seed(0)
    grid = torch.randn(side, side, 8)
    shapes = torch.tensor([[1, 1], [3, 7], [side, side], [2 * side, 1], [5, 2 * side // 3 + 1]])
    length = int(shapes.prod(-1).max()) + 3
    got = resize_positions(grid, shapes, length)
    for row, (h, w) in enumerate(shapes.tolist()):
        want = interpolated(grid, h, w).reshape(h * w, -1)
        assert (got[row, : h * w] - want).abs().max() < 1e-5, (h, w)
        assert torch.equal(got[row, h * w:], got[row, :1].expand(length - h * w, -1))


def test_zero_filled_and_random_inputs_give_finite_unit_vectors() -> None:
    config = ModelConfig(towers={"image": naflex_config()}, embed_dim=32)
    model = omnibind.OmniBind(config).eval()
    generator = torch.Generator().manual_seed(0)
    spec = registry.IMAGE.input_spec(config.towers["image"])
    batch = registry.IMAGE.random_input(config.towers["image"], 4, generator)
    assert batch.shape == (4, *spec.shape) == (4, 24, 50)
    shapes = unpack(batch)[1]
    assert (shapes.prod(-1) <= 24).all() and len(set(map(tuple, shapes.tolist()))) > 1
    with torch.no_grad():
        out = model({"image": torch.cat([batch, torch.zeros(1, *spec.shape)])})["image"]
    assert torch.isfinite(out).all() and torch.allclose(out.norm(dim=-1), torch.ones(5))
    with torch.no_grad():  # bfloat16 keeps the unary grid shape, so the same patches are pooled
        low = model.to(torch.bfloat16).encode("image", batch).float()
    assert (low - out[:4]).abs().max() < 0.1


def test_synthetic_prototypes_keep_their_grid_shapes() -> None:
    config = naflex_config()
    generator = torch.Generator().manual_seed(0)
    prototypes = registry.IMAGE.prototypes(config, 3, generator)
    noisy = registry.IMAGE.noisy_copy(prototypes, generator)
    assert torch.equal(unpack(noisy)[1], unpack(prototypes)[1])
    assert not torch.equal(noisy[..., :-2], prototypes[..., :-2])


def test_configs_round_trip_and_old_layouts_stay_unchanged() -> None:
    config = ModelConfig(towers={"image": naflex_config()}, embed_dim=32)
    data = config.to_dict()
    assert data["towers"]["image"]["max_num_patches"] == 24
    assert ModelConfig.from_dict(data) == config
    plain = model_config("Ti/16", modalities=("image",)).to_dict()["towers"]["image"]
    assert "max_num_patches" not in plain and "resample" not in plain  # written as before these fields existed
    with pytest.raises(InputError, match=r"towers\.image\.resample"):
        naflex_config(resample="cubic")
    with pytest.raises(InputError, match=r"towers\.image\.max_num_patches"):
        naflex_config(max_num_patches=-1)
    with pytest.raises(ValueError, match="not supported by the NaFlex tower"):
        omnibind.OmniBind(ModelConfig(towers={"image": naflex_config(pool="last")}, embed_dim=32))


def test_wrong_input_shape_is_named() -> None:
    tower = omnibind.OmniBind(ModelConfig(towers={"image": naflex_config()}, embed_dim=32)).towers["image"]
    with pytest.raises(ValueError, match=r"\(batch, patches, 50\)"):
        tower(torch.zeros(2, 3, 16, 16))


@pytest.mark.slow
def test_onnx_export_matches_pytorch_on_real_pictures(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from omnibind.export.onnx import UnitEmbedding, example_input, export_tower, max_abs_diff
    from omnibind.preprocess.naflex import NaFlexPreprocessor

    config = naflex_config()
    model = omnibind.OmniBind(ModelConfig(towers={"image": config}, embed_dim=32)).eval()
    module = UnitEmbedding(model.towers["image"]).eval()
    path = tmp_path / "image.onnx"
    export_tower(module, example_input(config, batch=2), path, "pixels")
    data = Path(pytest.importorskip("skimage").__file__).parent / "data"
    real = NaFlexPreprocessor(4, 24).batch([data / "astronaut.png", data / "rocket.jpg", data / "camera.png"])
    assert len(set(map(tuple, unpack(real)[1].tolist()))) == 2  # a square and a wide grid in one batch
    assert max_abs_diff(path, module, real) < 1e-4
    assert max_abs_diff(path, module, example_input(config, batch=5, seed=3)) < 1e-4
    assert max_abs_diff(path, module, pack(torch.ones(1, 48), 1, 1, 24)[None]) < 1e-4  # a one-patch picture
