"""Each inference path's embeddings against fp32 on the same weights and inputs, through `model.encode` (what
embed, index, search, serve and evaluation call), with the model's identity left as it was.

Tolerances (minimum cosine similarity of unit embeddings to fp32, per example): bf16 ≥ 0.999 (the default path
where the CPU has bf16; the issue's bound is 0.99), int8 ≥ 0.99, fp32 ≥ 1 − 1e-6; the ONNX paths are checked
in test_onnx.py."""

from __future__ import annotations

import pytest
import torch
from runtime_models import batches, uneven_rows, wide_model

from helpers import tiny_model
from omnibind.errors import InputError
from omnibind.runtime import apply_runtime, runtime_of, torch_paths
from omnibind.runtime.spec import RuntimeSpec
from omnibind.search.identity import fingerprint

MIN_COSINE = {"fp32": 1 - 1e-6, "bf16": 0.999, "int8": 0.99}


@pytest.mark.parametrize("path", sorted(MIN_COSINE))
def test_each_torch_path_matches_fp32_within_its_tolerance(path: str, reference: dict[str, torch.Tensor]) -> None:
    model = wide_model()
    before = fingerprint(model)
    assert apply_runtime(model, path) == RuntimeSpec(path)
    assert runtime_of(model) == RuntimeSpec(path)
    with torch.no_grad():
        for modality, x in batches().items():
            got = model.encode(modality, x)
            assert got.dtype == torch.float32 and got.shape == reference[modality].shape
            assert torch.allclose(got.norm(dim=-1), torch.ones(len(x)), atol=1e-5)
            cosine = (got * reference[modality]).sum(-1)
            assert cosine.min().item() >= MIN_COSINE[path], (modality, cosine.min().item())
    assert fingerprint(model) == before  # an index built on any path records the same model


def test_int8_really_quantizes_and_leaves_the_fp32_towers_alone() -> None:
    model = wide_model()
    apply_runtime(model, "int8")
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the module tree is untouched
    runtime = vars(model)["runtime"]
    outputs = {m: runtime.towers[m](x) for m, x in batches().items()}
    fp32 = {m: model.towers[m](x) for m, x in batches().items()}
    assert all(not torch.equal(outputs[m], fp32[m]) for m in outputs)  # not silently the fp32 tower


def test_bf16_casts_the_towers_in_place() -> None:
    model = wide_model()
    apply_runtime(model, "bf16")
    assert {p.dtype for p in model.towers.parameters()} == {torch.bfloat16}


def test_raw_inputs_are_preprocessed_then_run_on_the_path(spiece_model, media_files) -> None:
    plain, fast = tiny_model(spiece_model), tiny_model(spiece_model)
    apply_runtime(fast, "int8")
    sources = {"text": ["a red apple", "a dog"], "image": [str(media_files["photo"])],
               "audio": [str(media_files["tone"])]}
    with torch.no_grad():
        for modality, inputs in sources.items():
            cosine = (plain.encode(modality, inputs) * fast.encode(modality, inputs)).sum(-1)
            assert cosine.min().item() >= MIN_COSINE["int8"]


def test_an_unknown_tower_is_still_named() -> None:
    model = wide_model()
    apply_runtime(model, "bf16")
    with pytest.raises(InputError, match="depth: this model has no such tower"):
        model.encode("depth", torch.zeros(1, 3))


def test_a_runtime_is_applied_once() -> None:
    model = wide_model()
    apply_runtime(model, "fp32")
    with pytest.raises(InputError, match="already runs on fp32"):
        apply_runtime(model, "int8")


def test_compile_wraps_every_tower_of_a_torch_path(monkeypatch: pytest.MonkeyPatch,
                                                   reference: dict[str, torch.Tensor]) -> None:
    compiled: list[object] = []

    def fake_compile(call, dynamic, **options):  # records what would be compiled; runs it eagerly, fast
        assert dynamic is True
        compiled.append(call)
        return call

    monkeypatch.setattr(torch_paths.torch, "compile", fake_compile)
    model = wide_model()
    assert apply_runtime(model, "int8+compile").name == "int8+compile"
    assert len(compiled) == len(model.modalities)
    x = batches()["image"]
    assert (model.encode("image", x) * reference["image"]).sum(-1).min().item() >= MIN_COSINE["int8"]


def test_a_model_without_a_runtime_reports_its_dtype() -> None:
    model = wide_model()
    assert runtime_of(model) == RuntimeSpec("fp32")
    assert runtime_of(model.to(torch.bfloat16)) == RuntimeSpec("bf16")


@pytest.mark.skipif(not torch_paths.packed_linears_supported(), reason="no oneDNN bf16 on this CPU")
def test_bf16_runs_prepacked_fused_linears_that_match_eager_bf16() -> None:
    model = wide_model()
    apply_runtime(model, "bf16")
    fast = torch_paths.packed_copy(model.towers["image"])
    kinds = {type(m) for m in fast.modules()}
    assert {torch_paths.PackedBlock, torch_paths.PackedMLP} <= kinds  # the encoder's blocks, the MAP head's MLP
    assert torch.nn.Linear not in kinds  # every bf16 linear is packed
    shared = {id(p) for p in fast.parameters()}
    assert all(id(p) in shared for p in model.towers["image"].parameters())  # no second copy of the weights
    x = batches()["image"].to(torch.bfloat16)
    with torch.no_grad():
        cosine = torch.nn.functional.cosine_similarity(fast(x).float(), model.towers["image"](x).float())
    assert cosine.min().item() >= 0.9999


def test_bf16_without_onednn_runs_the_plain_tower(monkeypatch: pytest.MonkeyPatch,
                                                  reference: dict[str, torch.Tensor]) -> None:
    monkeypatch.setattr(torch_paths, "packed_linears_supported", lambda: False)
    model = wide_model()
    apply_runtime(model, "bf16")
    x = batches()["text"]
    assert (model.encode("text", x) * reference["text"]).sum(-1).min().item() >= MIN_COSINE["bf16"]


def test_compile_gets_the_plain_bf16_tower(monkeypatch: pytest.MonkeyPatch) -> None:
    packed: list[object] = []
    monkeypatch.setattr(torch_paths, "packed_copy", lambda tower: packed.append(tower) or tower)
    monkeypatch.setattr(torch_paths.torch, "compile", lambda call, dynamic, **options: call)
    apply_runtime(wide_model(), "bf16+compile")  # torch.compile cannot trace oneDNN's packed weights
    assert packed == []


def test_patch_embedding_returns_a_contiguous_sequence() -> None:
    tower = wide_model().towers["image"]
    with torch.no_grad():
        tokens = tower.patch_embed(batches()["image"])
    assert tokens.is_contiguous()  # else every LayerNorm after it copies its input


def quantized_linears(monkeypatch: pytest.MonkeyPatch, runtime: str) -> list[torch.ao.nn.quantized.dynamic.Linear]:
    """The dynamically quantized linear layers `runtime` builds for `wide_model()`'s towers."""
    made: list[torch.nn.Module] = []
    real = torch_paths.QUANTIZE_DYNAMIC

    def recording(*args: object, **kwargs: object) -> torch.nn.Module:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(torch_paths, "QUANTIZE_DYNAMIC", recording)
    apply_runtime(wide_model(), runtime)
    return [m for tower in made for m in tower.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]


def test_int8_quantizes_weights_per_output_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    linears = quantized_linears(monkeypatch, "int8")
    assert len(linears) == sum(isinstance(m, torch.nn.Linear) for m in wide_model().towers.modules())
    for layer in linears:
        weight = layer.weight()
        assert weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        assert weight.q_per_channel_scales().shape == (layer.out_features,)  # one scale per output row
    older = quantized_linears(monkeypatch, "int8-per-tensor")  # what indexes from before were built with
    assert older and all(layer.weight().qscheme() == torch.per_tensor_affine for layer in older)


def test_per_channel_int8_is_closer_to_fp32_than_per_tensor() -> None:
    reference = uneven_rows(wide_model())
    errors = {}
    for runtime in ("int8", "int8-per-tensor"):
        model = uneven_rows(wide_model())
        apply_runtime(model, runtime)
        with torch.no_grad():
            errors[runtime] = {m: 1 - (model.encode(m, x) * reference.encode(m, x)).sum(-1).mean().item()
                               for m, x in batches().items()}
    for modality, error in errors["int8"].items():
        assert error <= errors["int8-per-tensor"][modality], (modality, errors)


@pytest.mark.slow
def test_compiled_bf16_matches_fp32(reference: dict[str, torch.Tensor]) -> None:
    model = wide_model()  # a real torch.compile (about 20 s)
    apply_runtime(model, "bf16+compile")
    with torch.no_grad():
        embeddings = model.encode("image", batches()["image"])
    assert (embeddings.float() * reference["image"]).sum(-1).min().item() >= MIN_COSINE["bf16"]


@pytest.mark.skipif(not torch_paths.packed_linears_supported(), reason="no oneDNN bf16 on this CPU")
def test_a_layer_that_does_not_widen_keeps_a_small_batch_layout_and_both_match_eager_bf16() -> None:
    torch.manual_seed(0)
    down, up = torch.nn.Linear(96, 32).to(torch.bfloat16), torch.nn.Linear(32, 96).to(torch.bfloat16)
    packed_down, packed_up = torch_paths.PackedLinear(down), torch_paths.PackedLinear(up)
    assert packed_down.packed_small is not None and packed_up.packed_small is None  # a widening layer has one
    for rows in (1, torch_paths.SMALL_ROWS - 1, torch_paths.SMALL_ROWS, 2 * torch_paths.SMALL_ROWS):
        x = torch.randn(rows, 96, dtype=torch.bfloat16)
        expected = packed_down.packed_small if rows < torch_paths.SMALL_ROWS else packed_down.packed
        assert packed_down.layout_for(x) is expected
        residual = torch.randn(rows, 32, dtype=torch.bfloat16)
        with torch.no_grad():
            got, eager = packed_down(x, residual=residual).float(), (residual + down(x)).float()
        assert torch.allclose(got, eager, atol=0.05, rtol=0.02), (rows, (got - eager).abs().max().item())


@pytest.mark.skipif(not torch_paths.packed_linears_supported(), reason="no oneDNN bf16 on this CPU")
def test_a_packed_encoder_runs_its_blocks_on_even_item_chunks_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = wide_model()
    apply_runtime(model, "bf16")
    tower = model.towers["image"]
    fast = torch_paths.packed_copy(tower)
    encoder = fast.encoder
    assert isinstance(encoder, torch_paths.PackedEncoder) and encoder.widest == 256
    x = torch.randn(7, 16, 64, dtype=torch.bfloat16)  # 7 items of 16 tokens: 8 KiB of MLP activation each
    assert encoder.item_chunks(x) == [slice(0, 7)]  # all of it fits CHUNK_BYTES
    with torch.no_grad():
        whole = encoder(x)
        mask = torch.zeros(7, 1, 1, 16, dtype=torch.bfloat16)
        mask[2, ..., 9:] = float("-inf")  # item 2 sees only its first 9 tokens
        whole_masked = encoder(x, mask)
        monkeypatch.setattr(torch_paths, "CHUNK_BYTES", 3 * 16 * 256 * 2)  # three items' worth
        assert encoder.item_chunks(x) == [slice(0, 3), slice(3, 5), slice(5, 7)]
        chunked, chunked_masked = encoder(x), encoder(x, mask)
        monkeypatch.setattr(torch_paths, "CHUNK_BYTES", 1)  # never fits: one item at a time
        assert len(encoder.item_chunks(x)) == 7
        assert encoder.item_chunks(x[:0]) == [slice(0, 0)] and encoder(x[:0]).shape == (0, 16, 64)
        reference = tower.encoder(x)  # the plain bf16 Encoder
    for got, want in ((chunked, whole), (chunked_masked, whole_masked), (whole, reference)):
        cosine = torch.nn.functional.cosine_similarity(got.float(), want.float(), dim=-1)
        assert got.shape == want.shape and cosine.min().item() >= 0.9999
    assert not torch.allclose(whole_masked[2].float(), whole[2].float())  # the mask reached its item
