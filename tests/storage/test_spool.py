"""The spool: runs kept on local disk while the database cannot take them, written later
by any process; bounded; a record the database refuses is set aside, never blocking the
others. Run on every backend (the ``store`` fixture)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubestack_ai.storage import StorageError, Store
from kubestack_ai.storage.spool import Spool, SpooledActionEnd, SpooledRun
from tests.conftest import free_port

from .storage_factories import result

ROOT = Path(__file__).parent.parent.parent


def run(i: int, ttl: float | None = 60.0, outcome: str = "completed") -> SpooledRun:
    return SpooledRun(f"task-{i}", "redis:cache-1", "redis-diagnostics", (),
                      result(outcome=outcome), ttl)


def test_kept_runs_survive_the_process_and_are_written_oldest_first(
        store: Store, tmp_path: Path) -> None:
    Spool(tmp_path).put(run(1))
    Spool(tmp_path).put(run(2, outcome="killed"))
    spool = Spool(tmp_path)  # another process would see the same files
    assert spool.run_ids() == ["task-1", "task-2"]
    report = spool.flush(lambda r: r.record(store))
    assert (report.written, report.rejected, report.left) == (2, 0, 0)
    assert len(spool) == 0
    assert {r.run_id: r.outcome for r in store.history("redis:cache-1")} == {
        "task-1": "completed", "task-2": "killed"}
    # written twice (two processes flushing the same file): still one run
    Spool(tmp_path).put(run(1))
    assert Spool(tmp_path).flush(lambda r: r.record(store)).written == 1
    assert len(store.history("redis:cache-1")) == 2


def test_a_record_the_database_refuses_is_set_aside_and_the_rest_written(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    spool.put(run(1))
    spool.put(run(2, ttl=1e12))  # a date past year 9999: no database can store it
    spool.put(run(3))
    with caplog.at_level(logging.ERROR, "kubestack_ai.storage.spool"):
        report = spool.flush(lambda r: r.record(store))
    assert (report.written, report.rejected, report.rejected_ids) == (2, 1, ["task-2"])
    assert len(spool) == 0 and len(spool.rejected()) == 1
    assert "run task-2 set aside" in caplog.text
    assert {r.run_id for r in store.history("redis:cache-1")} == {"task-1", "task-3"}
    # and it is never tried again
    assert spool.flush(lambda r: r.record(store)).written == 0


def test_record_run_refuses_a_ttl_it_cannot_store_with_a_storage_error(store: Store) -> None:
    with pytest.raises(StorageError, match="ttl must be a number of seconds"):
        store.record_run("t-1", "redis:x", "redis-diagnostics", (), result(), 1e12)
    assert store.get_run("t-1") is None


def test_bounded_the_oldest_dropped_counted_and_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, max_records=3)
    with caplog.at_level(logging.ERROR, "kubestack_ai.storage.spool"):
        for i in range(5):
            spool.put(run(i))
    assert spool.run_ids() == ["task-2", "task-3", "task-4"]
    assert spool.dropped() == 2 and Spool(tmp_path).dropped() == 2
    assert "run task-0 lost: spool full (3 runs): the oldest run dropped" in caplog.text
    assert "(2 lost in all)" in caplog.text


def test_database_down_stops_the_flush_and_keeps_everything(tmp_path: Path) -> None:
    down = Store(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x", timeout=2)
    spool = Spool(tmp_path)
    for i in range(3):
        spool.put(run(i))
    report = spool.flush(lambda r: r.record(down))
    assert report.written == 0 and report.left == 3 and "unavailable" in (report.error or "")
    assert len(spool) == 3 and not spool.rejected()


def test_one_process_flushes_at_a_time(store: Store, tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(run(1))
    with spool._flushing() as mine:  # another process holding the flush lock
        assert mine
        other = subprocess.run(
            [sys.executable, "-c", "import sys; from kubestack_ai.storage.spool import Spool; "
             "r = Spool(sys.argv[1]).flush(lambda run: 1/0); print(r.skipped)", str(tmp_path)],
            capture_output=True, text=True, cwd=ROOT, check=True)
        assert other.stdout.strip() == "True"
    assert len(spool) == 1


def test_spool_files_are_private_and_whole(tmp_path: Path) -> None:
    path = Spool(tmp_path).put(run(1))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("command", [["results"], ["diagnose", "tcp", "127.0.0.1:6379"]],
                         ids=["results", "diagnose"])
def test_ksa_commands_that_open_the_store_write_the_spool(tmp_path: Path,
                                                          command: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    Spool(tmp_path / "spool").put(run(7))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update(KSA_HOME=str(tmp_path), KSA_DATABASE_URL=url)
    out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *command], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if command == ["results"]:
        assert "redis:cache-1" in out.stdout
    store = Store(url)
    assert store.get_run("task-7") is not None
    store.dispose()
    assert len(Spool(tmp_path / "spool")) == 0


def test_an_action_end_is_kept_and_closes_its_started_row(store: Store, tmp_path: Path) -> None:
    import datetime as dt

    from kubestack_ai.plugins.execution import ActionRecord
    from kubestack_ai.storage import AuditLog

    at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    AuditLog(store, "t-9").begin(ActionRecord(at=at, who="task t-9", plugin_id="p",
                                              target="redis:x", action="nap",
                                              outcome="started"))
    spool = Spool(tmp_path / "spool")
    end = SpooledActionEnd("t-9", "killed", "worker child lost: signal 9 (SIGKILL)",
                           at + dt.timedelta(seconds=2))
    spool.put(end)
    spool.put(end)  # Celery fires task_failure twice
    assert spool.run_ids() == ["t-9", "t-9"]
    report = spool.flush(lambda r: r.record(store))
    assert (report.written, report.rejected, len(spool)) == (2, 0, 0)
    a = store.audit_log(target="redis:x")[0]
    assert (a.outcome, a.duration, a.error) == ("killed", 2.0,
                                                "worker child lost: signal 9 (SIGKILL)")


def test_a_database_without_the_schema_keeps_the_run_in_the_spool(tmp_path: Path) -> None:
    """A database that was down when the workers started answers before anyone migrated
    it: the run waits in the spool (written after the migration), never set aside."""
    from kubestack_ai.workers.store import SafeStore

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = SafeStore(url, spool=tmp_path / "spool", timeout=2)
    r = run(5)
    written, err = store.record_run(r.run_id, r.target_key, r.plugin_id, (), r.result, 60)
    assert written is None and "has no schema" in (err or "")
    assert store.spool is not None
    assert store.spool.run_ids() == ["task-5"] and not store.spool.rejected()
    fresh = Store(url)
    fresh.migrate()
    assert store.spool.flush(lambda k: k.record(fresh)).written == 1
    assert fresh.get_run("task-5") is not None
    fresh.dispose()
