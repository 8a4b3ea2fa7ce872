"""Fixtures: our own redis-server processes (see util.py), stopped by whoever started them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from kubestack_ai.plugins import PluginManager

from .util import Servers, require


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    s = Servers(tmp_path_factory.mktemp("redis"))
    yield s
    s.stop_all()


@pytest.fixture(scope="module")
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    m.load_builtins()
    yield m
    m.stop_all()
