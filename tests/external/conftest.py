"""Fixtures for external plugins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    assert m.load_builtins() == []
    yield m
    m.stop_all()


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "plugins"
    d.mkdir()
    return d
