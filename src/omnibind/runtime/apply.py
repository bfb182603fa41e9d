"""Put an inference path into a loaded model: `apply_runtime(model, "bf16")` makes `model.encode`, which every
inference caller uses (embed, index, search, serve, zero-shot, evaluation), run the towers on that path.

The model keeps its fp32 towers (bf16 aside, which is cast in place: its fingerprint is taken in bf16 anyway),
so the index's weight fingerprint, `state_dict` and export see the same model whatever path runs it; the fast
towers live beside them, outside the module tree, and `encode` is replaced on this one instance. Such a model
is for inference: train and save the plain one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from omnibind.errors import InputError
from omnibind.models.model import OmniBind
from omnibind.runtime.detect import bf16_supported
from omnibind.runtime.spec import RuntimeSpec, parse_runtime
from omnibind.runtime.torch_paths import TORCH_BUILDERS, TowerCall, compiled

RUNTIME_ATTR = "runtime"
Encode = Callable[..., torch.Tensor]


def resolve(runtime: str | RuntimeSpec | None, device: str = "cpu") -> RuntimeSpec:
    """A concrete path: "auto" (or None) is bf16 where this CPU computes bf16 natively, fp32 elsewhere (and on
    any other device, where the model runs in the dtype it was loaded in)."""
    if isinstance(runtime, RuntimeSpec):
        return runtime
    spec = parse_runtime(runtime or "auto")
    if spec is not None:
        return spec
    return RuntimeSpec("bf16" if device == "cpu" and bf16_supported() else "fp32")


@dataclass
class Runtime:
    """The path a model runs on and its towers' fast forwards (features before normalisation), by modality."""

    spec: RuntimeSpec
    towers: dict[str, TowerCall] = field(default_factory=dict)
    threads: int = 1  # intra-op threads of the ONNX Runtime sessions (PyTorch's are process-wide)


def runtime_of(model: OmniBind) -> RuntimeSpec:
    """The path `model` runs on: the one applied, else fp32 or bf16 from its weights' dtype."""
    found = vars(model).get(RUNTIME_ATTR)
    if isinstance(found, Runtime):
        return found.spec
    dtype = next(model.parameters()).dtype
    return RuntimeSpec("bf16" if dtype == torch.bfloat16 else "fp32")


def apply_runtime(model: OmniBind, runtime: str | RuntimeSpec | None = "auto",
                  threads: int | None = None) -> RuntimeSpec:
    """Run `model`'s towers on `runtime` from now on (CPU models only; once per model) and return the
    resolved path; ONNX graphs are exported on first use and cached per weight fingerprint."""
    if RUNTIME_ATTR in vars(model):
        raise InputError("runtime", f"this model already runs on {runtime_of(model).name}",
                         "a freshly loaded model (apply a runtime once)")
    device = next(model.parameters()).device
    spec = resolve(runtime, device.type)
    if device.type != "cpu" and spec.path != "fp32":
        raise InputError("--runtime", f"{spec.name} is a CPU path and the model is on {device}",
                         "--device cpu, or --runtime fp32 on a GPU")
    count = threads or torch.get_num_threads()
    if spec.backend == "onnxruntime":
        from omnibind.runtime.onnx_backend import onnx_towers
        from omnibind.search.identity import fingerprint

        towers = onnx_towers(model, fingerprint(model), spec.path == "onnx-int8", count,
                             per_channel=not spec.per_tensor)
    else:
        towers = {m: TORCH_BUILDERS[spec.path](model.towers[m], spec) for m in model.modalities}
        if spec.compile:
            towers = {m: compiled(call) for m, call in towers.items()}
    installed = Runtime(spec, towers, count)
    vars(model)[RUNTIME_ATTR] = installed
    vars(model)["encode"] = _encoder(model, installed, model.encode)
    return spec


def _encoder(model: OmniBind, runtime: Runtime, plain: Encode) -> Encode:
    """`OmniBind.encode` with the runtime's tower forwards; float32 unit vectors (or features) out."""

    def encode(modality: str, inputs: Any, normalize: bool = True) -> torch.Tensor:
        call = runtime.towers.get(modality)
        if call is None:
            return plain(modality, inputs, normalize)
        model.tower(modality)  # an unknown modality: the error that names the towers there are
        batch = inputs if isinstance(inputs, torch.Tensor) else model.preprocess(modality, inputs)
        features = call(batch).float()
        return F.normalize(features, dim=-1) if normalize else features

    return encode

