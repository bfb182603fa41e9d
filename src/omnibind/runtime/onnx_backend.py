"""ONNX Runtime as an inference backend: each tower is exported once per model (weight fingerprint) into a
cache folder with omnibind's exporter, checked against PyTorch there, optionally quantized to int8 with ONNX
Runtime's dynamic quantizer, and run in an InferenceSession with this machine's thread count."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.runtime.torch_paths import TowerCall

CACHE_ENV = "OMNIBIND_CACHE"
INT8_SUFFIX = ".int8.onnx"


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


def exported_graphs(model: OmniBind, fingerprint: str, quantize: bool, root: Path | None = None) -> Path:
    """The folder of `<modality>.onnx` graphs (and `<modality>.int8.onnx` when `quantize`) for this model,
    exporting into a temporary folder renamed into place, so a reader finds a complete export or none."""
    from omnibind.export.onnx import MANIFEST, export_onnx

    folder = (root or cache_root()) / fingerprint
    if not (folder / MANIFEST).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{fingerprint}-", dir=folder.parent))
        try:
            export_onnx(model, tmp, model_name=fingerprint)
            with contextlib.suppress(OSError):  # another process published the same export first
                tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if quantize:
        for modality in model.modalities:
            _quantized(folder, modality)
    return folder


def _quantized(folder: Path, modality: str) -> Path:
    """`<modality>.int8.onnx`: the graph's MatMul weights in int8 (ONNX Runtime's dynamic quantization)."""
    target = folder / f"{modality}{INT8_SUFFIX}"
    if not target.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        partial = target.with_name(f".{target.name}.{os.getpid()}")
        quantize_dynamic(folder / f"{modality}.onnx", partial, weight_type=QuantType.QInt8)
        partial.replace(target)
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
                root: Path | None = None) -> dict[str, TowerCall]:
    """One ONNX Runtime callable per tower of `model` (exported or found in the cache)."""
    from omnibind.export.onnx import OPSET

    require_onnxruntime()
    folder = exported_graphs(model, f"{fingerprint}-opset{OPSET}", quantize, root)
    manifest = json.loads((folder / "manifest.json").read_text())
    calls = {}
    for modality, tower in manifest["towers"].items():
        path = folder / (f"{modality}{INT8_SUFFIX}" if quantize else tower["file"])
        calls[modality] = session_call(path, threads)
    return calls
