"""Fixtures: Tansu brokers on free loopback ports (session scope, stopped by the fixture
that started them) and a plugin manager."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_helpers import SASL_PASSWORD, SASL_USER, Tansu
from sasl_front import SaslFront

from plugins import PluginConfig, PluginManager
from tests.conftest import free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    b = Tansu(tmp_path_factory.mktemp("tansu"))
    yield b
    b.stop()


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """Tansu requiring SASL: it has no users, so every login is refused by Tansu itself."""
    b = Tansu(tmp_path_factory.mktemp("tansu-auth"), "--authentication")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def sasl_front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslFront]:
    """A plain Tansu behind a SASL front that knows alice (see sasl_front.py for why)."""
    front_port = free_port()
    b = Tansu(tmp_path_factory.mktemp("tansu-sasl"), advertised_port=front_port)
    front = SaslFront(front_port, ("127.0.0.1", b.port), {SASL_USER: SASL_PASSWORD})
    yield front
    front.close()
    b.stop()


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    m.load_builtin("kafka-diagnostics", PluginConfig(thresholds={"lag_sample_seconds": 0.4}))
    yield m
    m.stop_all()


