"""Composition: one embedding space from several models (`omnibind compose`). The first model's towers
are the base space; every tower another model adds is connected to it by a small trained map, trained with
`omnibind train` from text alone (objective `text_bridge`), paired data (`sigmoid`) or both
(`text_bridge_sigmoid`). See docs/pretrained.md, "Composition"."""

from __future__ import annotations

from omnibind.compose.build import Plan, Source, compose, parse_source, plan, save_composed
from omnibind.compose.connected import CONNECTORS

__all__ = ["CONNECTORS", "Plan", "Source", "compose", "parse_source", "plan", "save_composed"]
