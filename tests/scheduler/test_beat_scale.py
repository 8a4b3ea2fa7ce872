"""Beat at fleet scale: 10,000 targets every 10 s, counted on a real Redis broker.

The old scheduler (Celery's tick over ScheduleEntry objects) sent ~43 messages/s at
this size, so a 10 s interval could not be kept; these tests count what reached the
broker in a bounded time. Also: fleet.d directories and the spread of first runs.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.scheduler import FleetError, load_fleet
from tests.conftest import require
from tests.redis.util import RedisProc

pytestmark = pytest.mark.timeout(110)

N, INTERVAL, WINDOW = 10_000, 10.0, 25.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProc]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    r = RedisProc(tmp_path_factory.mktemp("broker"))
    yield r
    r.stop()


def write_fleet(path: Path, n: int, interval: float) -> None:
    lines = [f"defaults: {{interval: {interval}, health_interval: 0}}", "targets:"]
    lines += [f"  - {{name: c{i}, type: redis, endpoints: ['127.0.0.1:{1024 + i}'],"
              " auth: {password: env:PW}}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def _scheduler(tmp: Path, fleet: Path, broker_url: str) -> tuple[Any, Any]:
    from kubestack_ai.scheduler.beat import FleetScheduler
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    app = create_app(Settings.from_env({"KSA_HOME": str(tmp), "KSA_FLEET": str(fleet),
                                        "KSA_BROKER_URL": broker_url}))
    return app, FleetScheduler(app=app, lazy=False)


def test_beat_keeps_a_10s_interval_for_10000_targets(tmp_path: Path, broker: RedisProc) -> None:
    fleet = tmp_path / "fleet.yaml"
    write_fleet(fleet, N, INTERVAL)
    url = f"redis://127.0.0.1:{broker.port}/0"
    app, s = _scheduler(tmp_path, fleet, url)
    r = broker.client()
    try:
        t0 = time.time()
        while time.time() - t0 < WINDOW:  # celery.beat.Service's loop
            wait = s.tick()
            time.sleep(min(wait, max(0.0, WINDOW - (time.time() - t0))))
        sends: dict[str, list[float]] = {}
        for raw in r.lrange("redis", 0, -1):
            headers = json.loads(raw)["headers"]
            assert headers["task"] == "diagnose.redis" and headers["celery_beat_task"]
            name = headers["kwargsrepr"].split("'name': '", 1)[1].split("'", 1)[0]
            expires = dt.datetime.fromisoformat(headers["expires"]).timestamp()
            sends.setdefault(name, []).append(expires - INTERVAL)
    finally:
        s.close()
        app.close()
        r.delete("redis")
        r.close()
    # every target, at its cadence: 2 or 3 runs in 25 s, 10 s apart (expiry = 1 interval)
    assert len(sends) == N
    counts = [len(v) for v in sends.values()]
    assert min(counts) >= 2 and max(counts) <= 3, (min(counts), max(counts))
    gaps = [b - a for v in sends.values() for a, b in zip(sorted(v), sorted(v)[1:], strict=False)]
    assert all(INTERVAL - 1.5 <= g <= INTERVAL + 1.5 for g in gaps), (min(gaps), max(gaps))
    # first runs spread over the interval, not fired at once: ~half in the first 5 s
    firsts = sorted(min(v) - t0 for v in sends.values())
    assert 0.35 * N < sum(1 for f in firsts if f < INTERVAL / 2) < 0.65 * N


def test_fleet_directory_is_one_fleet_and_follows_its_files(tmp_path: Path,
                                                            broker: RedisProc) -> None:
    d = tmp_path / "fleet.d"
    d.mkdir()
    (d / "10-cache.yaml").write_text(
        "defaults: {interval: 60, health_interval: 0}\n"
        "targets:\n  - {name: a, type: redis, endpoints: ['127.0.0.1:7001']}\n")
    (d / "20-db.json").write_text(json.dumps(
        {"defaults": {"interval": 30}, "targets": [
            {"name": "b", "type": "mysql", "endpoints": ["127.0.0.1:3306"]}]}))
    (d / "README.txt").write_text("not a fleet file")
    fleet = load_fleet(d)
    assert [(t.key, t.interval, t.health_interval) for t in fleet.targets] == [
        ("redis:a", 60, 0), ("mysql:b", 30, 30)]

    app, s = _scheduler(tmp_path, d, f"redis://127.0.0.1:{broker.port}/1")
    try:
        assert sorted(s.schedule) == ["diagnose mysql:b", "diagnose redis:a", "health mysql:b",
                                      "ksa retention"]
        (d / "30-more.yaml").write_text(
            "targets:\n  - {name: c, type: redis, endpoints: ['127.0.0.1:7002']}\n")
        assert s.reload_fleet()  # a new file in the directory
        assert "diagnose redis:c" in s.schedule
        (d / "20-db.json").unlink()
        assert s.reload_fleet()  # a file removed
        assert "diagnose mysql:b" not in s.schedule
        (d / "30-more.yaml").write_text(
            "targets:\n  - {name: a, type: redis, endpoints: ['127.0.0.1:7003']}\n")
        assert not s.reload_fleet()  # the same target in two files: refused, schedule kept
        assert s.fleet_error == (f"fleet file {d / '30-more.yaml'}: targets[0]: duplicate "
                                 f"target 'redis:a' (also in fleet file {d / '10-cache.yaml'}) "
                                 "(give each a distinct name)")
        assert "diagnose redis:c" in s.schedule
    finally:
        s.close()
        app.close()


def test_a_bad_file_in_a_directory_is_named(tmp_path: Path) -> None:
    d = tmp_path / "fleet.d"
    d.mkdir()
    (d / "a.yaml").write_text("targets:\n  - {name: a, type: redis, endpoints: ['h:1']}\n")
    (d / "b.yaml").write_text("targets:\n  - {name: b, type: redis, endpoints: ['nohost']}\n")
    with pytest.raises(FleetError) as e:
        load_fleet(d)
    assert str(e.value) == (f"fleet file {d / 'b.yaml'}: targets[0].endpoints: Value error, "
                            "endpoint 'nohost' is not host:port")


@pytest.mark.parametrize(("text", "error"), [
    ("targets:\n  - &t {name: a, type: redis, endpoints: ['h:1']}\n  - *t\n",
     "YAML aliases (*t) are not allowed"),
    ("targets: !!python/object:os.system x\n", "tag tag:yaml.org,2002:python/object:os.system"),
])
def test_fleet_yaml_is_guarded(tmp_path: Path, text: str, error: str) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(text)
    with pytest.raises(FleetError) as e:
        load_fleet(f)
    assert error in str(e.value)
