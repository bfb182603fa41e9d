"""ONNX Runtime as an inference backend: each tower is exported once per model (weight fingerprint) into a
cache folder with omnibind's exporter, checked against PyTorch there, optionally quantized to int8 with ONNX
Runtime's dynamic quantizer (weights per output channel), and run in an InferenceSession with this machine's
thread count.

Before int8 quantization the graph goes through ONNX Runtime's transformer optimizer (`onnxruntime.transformers`:
the GELU fused into one node with its bias, LayerNorm patterns folded), and only the MatMul/Gemm weights are
quantized: the patch embedding's convolution stays fp32 (ConvInteger ran slower than the fp32 convolution it
replaced). On a SigLIP-B image tower at batch 8 both together made onnx-int8 about 1.2× faster, at the same
cosine to fp32."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.runtime.torch_paths import TowerCall

CACHE_ENV = "OMNIBIND_CACHE"
INT8_SUFFIX = ".int8-v3.onnx"  # v3: weights per output channel (v2 per tensor, v1 ".int8.onnx" unoptimized)
PER_TENSOR_INT8_SUFFIX = ".int8-v2.onnx"  # v2: optimized before quantizing, convolutions left fp32, per tensor
QUANTIZED_OPS = ["MatMul", "Gemm"]
ATTENTION_OPSET = 23  # the first opset with Attention (and, from 20, Gelu) as one op


def cache_root() -> Path:
    """Where exported graphs live: $OMNIBIND_CACHE/onnx, else ~/.cache/omnibind/onnx (XDG_CACHE_HOME honoured)."""
    base = os.environ.get(CACHE_ENV) or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                      "omnibind")
    return Path(base) / "onnx"


def require_onnxruntime() -> Any:
    """The onnxruntime module, or an error naming the runtime option and the package to install."""
    try:
        import onnxruntime
    except ImportError as err:
        raise InputError("--runtime", "the ONNX paths need onnxruntime, which is not installed",
                         "`pip install onnxruntime`, or --runtime fp32 / bf16 / int8") from err
    return onnxruntime


def runtime_opsets() -> tuple[int, ...]:
    """The opsets to export the runtime's graphs at, in order of preference: 23 first where onnxruntime runs
    it (1.23 on), whose Attention and Gelu ops ONNX Runtime runs as single fused kernels (the onnx-int8 image
    tower was about 1.1× faster than at opset 18), then the exporter's default, which `omnibind export onnx`
    keeps writing for other runtimes."""
    from omnibind.export.onnx import OPSET

    ort = require_onnxruntime()
    try:
        version = tuple(int(part) for part in ort.__version__.split(".")[:2])
    except ValueError:
        version = (0, 0)
    return (ATTENTION_OPSET, OPSET) if version >= (1, 23) and ATTENTION_OPSET > OPSET else (OPSET,)


def int8_suffix(per_channel: bool) -> str:
    """The file suffix of a tower's int8 graph: per-channel weights (v3), or per tensor (v2, older indexes')."""
    return INT8_SUFFIX if per_channel else PER_TENSOR_INT8_SUFFIX


def exported_graphs(model: OmniBind, fingerprint: str, quantize: bool, root: Path | None = None,
                    opset: int | None = None, per_channel: bool = True) -> Path:
    """The folder of `<modality>.onnx` graphs (and `<modality>.int8-v3.onnx`, or `.int8-v2.onnx` per tensor, when
    `quantize`) for this model, exporting into a temporary folder renamed into place, so a reader finds a
    complete export or none."""
    from omnibind.export.onnx import MANIFEST, OPSET, export_onnx

    folder = (root or cache_root()) / fingerprint
    if not (folder / MANIFEST).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fingerprint}-", dir=folder.parent))
        try:
            export_onnx(model, tmp, opset=opset or OPSET, model_name=fingerprint)
            with contextlib.suppress(OSError):  # another process published the same export first
                tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if quantize:
        for modality in model.modalities:
            _quantized(folder, modality, per_channel)
    return folder


@contextlib.contextmanager
def _quiet_tools() -> Iterator[None]:
    """Silence onnxruntime's optimizer and quantizer chatter (shape-inference notes, pre-processing advice),
    which they print and log at WARNING on the root logger, for a one-time step the user did not ask about."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in (
        "onnxruntime.transformers", "fusion_base", "fusion_skiplayernorm", "fusion_utils", "onnx_model",
        "onnx_model_bert", "optimizer"))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def optimized_graph(source: Path, target: Path) -> Path:
    """`source` through ONNX Runtime's transformer optimizer (fused GELU and LayerNorm), written to `target`;
    `source` itself where the optimizer is missing or fails on the graph (its fusions are a speed-up only)."""
    try:
        from onnxruntime.transformers import optimizer
    except ImportError:
        return source
    try:
        with _quiet_tools():
            model = optimizer.optimize_model(str(source), model_type="bert", num_heads=0, hidden_size=0, opt_level=0)
            model.save_model_to_file(str(target))
    except Exception:  # an unusual graph the fusions do not expect: quantize it as exported
        target.unlink(missing_ok=True)
        return source
    return target


def _quantized(folder: Path, modality: str, per_channel: bool = True) -> Path:
    """`<modality>.int8-v3.onnx`: the optimized graph with its MatMul/Gemm weights in int8, one scale per output
    channel (ONNX Runtime's dynamic quantization; activations quantized per batch; the fused MatMul op it
    becomes takes per-column scales); per tensor into `.int8-v2.onnx` where not `per_channel`."""
    target = folder / f"{modality}{int8_suffix(per_channel)}"
    if not target.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        partial = target.with_name(f".{target.name}.{os.getpid()}")
        fused = target.with_name(f".{modality}.fused.{os.getpid()}.onnx")
        try:
            source = optimized_graph(folder / f"{modality}.onnx", fused)
            with _quiet_tools():
                quantize_dynamic(source, partial, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                                 per_channel=per_channel)
            partial.replace(target)
        finally:
            fused.unlink(missing_ok=True)
            partial.unlink(missing_ok=True)
    return target


def session_call(path: Path, threads: int) -> TowerCall:
    """A callable running one exported graph in an ONNX Runtime session with `threads` intra-op threads."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy()
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        return torch.from_numpy(session.run(None, {name: array})[0])

    return forward


def onnx_towers(model: OmniBind, fingerprint: str, quantize: bool, threads: int,
                root: Path | None = None, per_channel: bool = True) -> dict[str, TowerCall]:
    """One ONNX Runtime callable per tower of `model`: found in the cache at any of `runtime_opsets()` (the
    preferred first), else exported at the first of them that exports and matches PyTorch (so a tower that
    cannot be written at the newer opset pays the failed try once, not on every load); int8 weights per output
    channel unless not `per_channel`."""
    from omnibind.export.onnx import MANIFEST

    base = root or cache_root()
    cached = [o for o in runtime_opsets() if (base / f"{fingerprint}-opset{o}" / MANIFEST).is_file()]
    opsets = tuple(cached[:1]) or runtime_opsets()
    for opset in opsets:
        try:
            folder = exported_graphs(model, f"{fingerprint}-opset{opset}", quantize, root, opset, per_channel)
            break
        except Exception:  # a tower the newer opset cannot express (or runs differently): the older one
            if opset == opsets[-1]:
                raise
    manifest = json.loads((folder / "manifest.json").read_text())
    calls = {}
    for modality, tower in manifest["towers"].items():
        path = folder / (f"{modality}{int8_suffix(per_channel)}" if quantize else tower["file"])
        calls[modality] = session_call(path, threads)
    return calls
