"""Registered training objectives: model outputs + batch → loss and its named parts. Importing this
package registers the built-in ones (sigmoid, softmax, captioning, and the
composed models' text_bridge and text_bridge_sigmoid), in that order; see registry.py for plugins."""

from __future__ import annotations

from omnibind.objectives.base import Batch, Objective, ObjectiveSetup, Outputs, Pair, mask, pair_name
from omnibind.objectives.captioning import CaptioningObjective
from omnibind.objectives.contrastive import ContrastiveObjective, SigmoidObjective, SoftmaxObjective
from omnibind.objectives.registry import (
    build_objective,
    get_objective,
    objective_names,
    register_objective,
    unregister_objective,
)
from omnibind.objectives.text_bridge import TextBridge, TextBridgeSigmoid

for _builtin in (SigmoidObjective, SoftmaxObjective, CaptioningObjective, TextBridge, TextBridgeSigmoid):
    register_objective(_builtin)

__all__ = [
    "Batch",
    "CaptioningObjective",
    "ContrastiveObjective",
    "Objective",
    "ObjectiveSetup",
    "Outputs",
    "Pair",
    "SigmoidObjective",
    "SoftmaxObjective",
    "build_objective",
    "get_objective",
    "mask",
    "objective_names",
    "pair_name",
    "register_objective",
    "unregister_objective",
]
