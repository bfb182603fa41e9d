"""The converter registry finds each foreign kind by its config.json and names the known ones otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibind.convert import registry
from omnibind.errors import CheckpointError


def test_siglip_is_a_registered_kind() -> None:
    kind = registry.find({"model_type": "siglip"}, Path("config.json"))
    assert "SigLIP" in kind.name


def test_an_unknown_kind_names_the_file_its_model_type_and_the_known_kinds() -> None:
    with pytest.raises(CheckpointError) as err:
        registry.find({"model_type": "bert"}, Path("/m/config.json"))
    message = str(err.value)
    assert "/m/config.json" in message and "'bert'" in message
    assert all(kind.name in message for kind in registry.kinds())
