"""The modality registry: built-ins in order, lookups by name, extension, field, header and config class,
refusals that name what exists, and plugins named in OMNIBIND_MODALITIES reaching a fresh process."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

import omnibind.modalities as registry
from omnibind.errors import InputError
from omnibind.modalities import Modality, TowerConfig
from toy_modality import DEPTH, depth_map, npy_bytes, plugin_env


def test_builtins_and_lookups() -> None:
    assert registry.names()[:3] == ("image", "text", "audio")
    assert registry.modality_of("a/B.JPEG") == "image" and registry.modality_of("x.flac") == "audio"
    assert registry.modality_of("notes.txt") is None  # text has no files of its own
    assert registry.for_field("txt").name == "text" and registry.for_field("json") is None
    assert "text" not in registry.media_names() and {"image", "audio"} <= set(registry.media_names())
    assert registry.for_config(registry.AudioConfig()).name == "audio"


def test_plugin_lookups() -> None:
    assert registry.get("depth") is DEPTH and registry.modality_of("scan.npy") == "depth"
    assert registry.sniff(npy_bytes(depth_map(0, 0))) is DEPTH


def test_unknown_modality_names_the_registered_ones() -> None:
    with pytest.raises(InputError, match=r"unknown modality.*image, text, audio"):
        registry.get("video")


def test_an_extension_has_one_owner() -> None:
    @dataclass
    class ClipConfig(TowerConfig):
        frames: int = 8

    class Clip(Modality):
        name = "clip"
        config_class = ClipConfig
        extensions = ("png",)

        def build_tower(self, config, embed_dim):  # pragma: no cover - never built
            raise NotImplementedError

        def input_spec(self, config):  # pragma: no cover
            raise NotImplementedError

        def build_preprocessor(self, config, assets):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(InputError, match=r"\.png already belongs to 'image'"):
        registry.register(Clip())
    assert "clip" not in registry.names()


def test_env_plugins_reach_a_fresh_process() -> None:
    code = "import omnibind.modalities as r; print(','.join(r.names()))"
    out = subprocess.run([sys.executable, "-c", code], env=plugin_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "image,text,audio,depth"


def test_a_missing_plugin_module_is_a_clear_error() -> None:
    code = "import omnibind.modalities as r; r.names()"
    env = {**plugin_env(), "OMNIBIND_MODALITIES": "no_such_module"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "OMNIBIND_MODALITIES: cannot import modality module 'no_such_module'" in out.stderr
