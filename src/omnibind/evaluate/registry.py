"""The registry of evaluators: each entry is a factory that looks at a split's examples and the model and
returns the evaluators that apply (zero-shot per media modality, retrieval, or a plugin's own). An evaluator
is any object with `run(model) -> dict[str, float]`; one with a `ranked` dict also feeds the report's grid."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from omnibind.errors import InputError

if TYPE_CHECKING:
    from omnibind.evaluate.examples import EvalExample
    from omnibind.models.model import OmniBind

Templates = Mapping[str, Sequence[str] | None]
"""Prompt templates per modality (None: the modality's own)."""


@runtime_checkable
class Evaluator(Protocol):
    """Measures a model on the examples it was built with; metrics are named "<evaluator>/<metric>"."""

    def run(self, model: OmniBind) -> dict[str, float]: ...


EvaluatorFactory = Callable[["Sequence[EvalExample]", "OmniBind", Templates], list[Any]]
"""(examples, model, templates) -> the evaluators that apply to them (possibly none)."""

_factories: dict[str, EvaluatorFactory] = {}


def register_evaluator(name: str, factory: EvaluatorFactory, replace: bool = False) -> EvaluatorFactory:
    """Add an evaluator factory under `name`; evaluators run in registration order."""
    if not name.isidentifier():
        raise InputError(name, "evaluator name", "an identifier such as 'retrieval'")
    if name in _factories and not replace and _factories[name] is not factory:
        raise InputError(name, "an evaluator of this name is already registered", "a new name, or replace=True")
    _factories[name] = factory
    return factory


def unregister_evaluator(name: str) -> None:
    """Remove an evaluator factory (tests that register toy evaluators clean up with this)."""
    _factories.pop(name, None)


def evaluator_names() -> tuple[str, ...]:
    """The registered evaluator factories, in the order they run."""
    return tuple(_factories)


def evaluators_for(examples: Sequence[EvalExample], model: OmniBind, templates: Templates | None = None) -> list[Any]:
    """Every registered factory's evaluators for these examples and this model, in registration order."""
    found: list[Any] = []
    for factory in _factories.values():
        found.extend(factory(examples, model, templates or {}))
    return found
