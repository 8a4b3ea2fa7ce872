"""Bad fleet files: refused in bounded time and memory, with every problem named and no
secret echoed; a running beat keeps its last good schedule; beat says when it stands by
and does not flood its log about a missing file."""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.scheduler import FleetError, load_fleet

SECRET = "S3nt-hunter2-literal"

GOOD = """targets:
  - {name: cache, type: redis, endpoints: ["127.0.0.1:6379"], categories: [memory]}
"""

# 628 bytes that expand to hundreds of MB as kwargs (the bomb, smaller levels)
BOMB = "a: &a [" + ",".join(["x"] * 10) + "]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)) + "targets:\n  - {name: x, type: redis, endpoints: ['h:1'], options: {o: *i}}\n"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    a = create_app(Settings.from_env({"KSA_HOME": str(tmp_path),
                                      "KSA_FLEET": str(tmp_path / "fleet.yaml")}))
    yield a
    a.close()


def known(app: Any) -> dict[str, tuple[str, ...]]:
    return {t: s.categories for t, s in app.ksa_specs.items()}


def test_alias_bomb_refused_at_once_in_bounded_memory(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text(BOMB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    with pytest.raises(FleetError) as e:
        load_fleet(f)
    assert time.monotonic() - t0 < 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB
    assert "YAML aliases (*a) are not allowed" in str(e.value) and "line 2" in str(e.value)


def test_oversized_and_deeply_nested_files_refused(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("targets: []\n" + "#" * (65 * 1024 * 1024))
    with pytest.raises(FleetError, match="larger than 64 MiB"):
        load_fleet(f)
    f.write_text("targets: " + "[" * 100 + "]" * 100)
    with pytest.raises(FleetError, match="nesting deeper than"):
        load_fleet(f)


def test_yaml_syntax_error_names_line_and_column_never_the_text(tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("targets:\n  - name: c\n    type: redis\n"
                 f"    options: {{sentinel_password_ref: {SECRET}\n    endpoints: [h:1]\n")
    with pytest.raises(FleetError) as e:
        load_fleet(f)
    msg = str(e.value)
    assert msg.startswith(f"fleet file {f}: invalid YAML: line 5, column ")
    assert SECRET not in msg and "sentinel_password_ref" not in msg


def test_every_problem_of_every_target_reported(app: Any, tmp_path: Path) -> None:
    f = tmp_path / "fleet.yaml"
    f.write_text("targets:\n"
                 "  - {name: pg, type: mongodb, endpoints: ['h:5432']}\n"
                 "  - {name: c, type: redis, endpoints: ['nohost'], interval: 0, "
                 "auth: {password: " + SECRET + "}}\n"
                 "  - {name: c2, type: redis, endpoints: ['h:1'], categories: [memroy]}\n"
                 "  - {name: c3, type: redis, endpoints: ['h:1'], categories: memory}\n"
                 "  - {name: " + "n" * 300 + ", type: redis, endpoints: ['h:1']}\n")
    with pytest.raises(FleetError) as e:
        load_fleet(f, known(app))
    msg = str(e.value)
    assert SECRET not in msg and "n" * 300 not in msg
    for part in [
        "targets[0].type: unknown type 'mongodb' (known: "
        + ", ".join(sorted(app.ksa_specs)) + ")",
        "targets[1].endpoints: Value error, endpoint 'nohost' is not host:port",
        "targets[1].auth.password: Value error, auth.password must be a secret reference",
        "targets[1].interval: Input should be greater than 0",
        "targets[2].categories: unknown categories memroy for type redis (known: memory, ",
        "targets[3]: categories must be a list of names, not a string",
        "targets[4]: target.name is 300 characters long; at most 200",
    ]:
        assert part in msg, (part, msg)


def test_empty_fleet_says_so(app: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kubestack_ai.scheduler.beat import FleetScheduler

    (tmp_path / "fleet.yaml").write_text("targets: []\n")
    with caplog.at_level(logging.INFO, "kubestack_ai.scheduler.beat"):
        s = FleetScheduler(app=app, lazy=False)
    s.lock.release()
    assert "lists no targets: nothing to schedule" in caplog.text


def test_running_beat_keeps_its_last_good_schedule(app: Any, tmp_path: Path) -> None:
    from kubestack_ai.scheduler.beat import FleetScheduler

    f = tmp_path / "fleet.yaml"
    f.write_text(GOOD)
    s = FleetScheduler(app=app, lazy=False)
    try:
        good = sorted(s.schedule)
        for i, bad in enumerate([BOMB, "targets:\n  - {name: x, type: mongodb, endpoints: ['h:1']}\n"]):
            f.write_text(bad)
            os.utime(f, ns=(10 + i, 10 + i))
            assert not s.reload_fleet()
            assert sorted(s.schedule) == good and s.fleet_error
    finally:
        s.lock.release()


def test_missing_file_logged_once_then_once_a_minute(
        app: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kubestack_ai.scheduler import beat

    with caplog.at_level(logging.ERROR, "kubestack_ai.scheduler.beat"):
        s = beat.FleetScheduler(app=app, lazy=False)  # missing from the start
        for _ in range(200):
            s.tick()
    s.lock.release()
    assert caplog.text.count("No such file or directory") == 1
    caplog.clear()
    f = tmp_path / "fleet.yaml"
    f.write_text(GOOD)
    with caplog.at_level(logging.ERROR, "kubestack_ai.scheduler.beat"):
        s = beat.FleetScheduler(app=app, lazy=False)
        f.unlink()  # goes missing while beat runs
        for _ in range(200):
            s.tick()
        assert caplog.text.count("No such file or directory") == 1
        s._missing_logged -= beat.MISSING_LOG_EVERY  # a minute later
        s.tick()
    s.lock.release()
    assert caplog.text.count("No such file or directory") == 2
    # the last good schedule is kept
    assert {"diagnose redis:cache", "health redis:cache"} <= set(s.schedule)


def test_standby_beat_says_it_stands_by(app: Any, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    from kubestack_ai.scheduler.beat import FleetScheduler

    (tmp_path / "fleet.yaml").write_text(GOOD)
    first = FleetScheduler(app=app, lazy=False)
    with caplog.at_level(logging.INFO, "kubestack_ai.scheduler.beat"):
        first.tick()
        second = FleetScheduler(app=app, lazy=False)
        for _ in range(3):
            assert second.tick() == 2.0
    first.lock.release()
    second.lock.release()
    assert caplog.text.count("another beat holds the lock (FileBeatLock): standing by") == 1
    assert "holding the beat lock (FileBeatLock): scheduling" in caplog.text
