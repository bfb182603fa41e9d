"""Configs round-trip through JSON and reject unknown or inconsistent fields by name."""

from __future__ import annotations

import json

import pytest

from omnibind.config import ModelConfig, model_config
from omnibind.errors import InputError


def test_json_round_trip() -> None:
    config = model_config("S/16", embed_dim=256, image={"image_size": 256})
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert again.towers["image"].projection and again.towers["image"].image_size == 256


def test_unknown_field_is_named() -> None:
    data = model_config("Ti/16").to_dict()
    data["towers"]["image"]["colour"] = 1
    with pytest.raises(InputError, match=r"towers\.image.*colour"):
        ModelConfig.from_dict(data)


def test_unknown_modality_and_inconsistent_dims() -> None:
    with pytest.raises(InputError, match="unknown modality"):
        model_config("Ti/16", modalities=("video",))
    data = model_config("Ti/16").to_dict()
    data["towers"]["text"]["embed_dim"] = 7
    with pytest.raises(InputError, match=r"towers\.text\.embed_dim"):
        ModelConfig.from_dict(data)


def test_audio_front_end_fields_nested_or_flat_and_unknown_ones_named() -> None:
    """One copy of the front end: flat (older layouts, overrides) and nested fields land in it; a field it does
    not have is named, and an invalid value is refused by the settings themselves."""
    config = model_config("Ti/16", modalities=("audio",), audio={"n_mels": 32, "front_end": {"clip_seconds": 2.0}})
    front_end = config.towers["audio"].front_end
    assert (front_end.n_mels, front_end.clip_seconds) == (32, 2.0)
    data = config.to_dict()
    data["towers"]["audio"]["front_end"]["window"] = "hann"
    with pytest.raises(InputError, match=r"towers\.audio\.front_end.*window"):
        ModelConfig.from_dict(data)
    data["towers"]["audio"]["front_end"].pop("window")
    data["towers"]["audio"]["front_end"]["n_mels"] = 0
    with pytest.raises(InputError, match=r"AudioSettings\.n_mels"):
        ModelConfig.from_dict(data)
