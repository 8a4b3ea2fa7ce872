"""The spool on a full disk (a 64 KiB tmpfs of the test's own): a record is whole on
disk or absent, a temporary file never stays, every lost run is counted (on disk, and
in ``/metrics``) and logged once; leftovers of a crash are cleaned at start; a corrupt
record's log line names its file and what is wrong with it."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.storage import Store
from kubestack_ai.storage.spool import Spool, SpooledRun
from tests.conftest import free_port, require

from .storage_factories import result

SIZE = 64 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk (ENOSPC, short writes), no mock."""
    d = tmp_path / "disk"
    d.mkdir()
    ok = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE // 1024}k", "tmpfs", str(d)],
        capture_output=True).returncode == 0
    require(ok, "mounting a tmpfs (root): a small filesystem to fill")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Store]:
    """The spool's behaviour does not depend on the backend (test_spool.py runs on each)."""
    s = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    s.migrate()
    yield s
    s.dispose()


def run(i: int, pad: int = 0) -> SpooledRun:
    return SpooledRun(f"task-{i}", "redis:cache-1", "redis-diagnostics", (),
                      result(metrics={"pad": "x" * pad} if pad else None), 60.0)


def fill(d: Path, leave: int) -> None:
    """Fill the filesystem of ``d`` up to ``leave`` bytes free (within a page)."""
    with open(d / "ballast", "wb") as fh:
        with contextlib.suppress(OSError):
            while os.statvfs(d).f_bavail * os.statvfs(d).f_frsize > leave:
                fh.write(b"\0" * 4096)
                fh.flush()


def test_a_full_disk_leaves_no_truncated_record_no_temp_file_and_counts_the_loss(
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(small_disk / "spool")
    spool.put(run(1))  # the disk had room: kept
    fill(small_disk, 8192)
    with caplog.at_level(logging.ERROR, "kubestack_ai.storage.spool"):
        for i in range(2, 5):  # each 20 KiB: more than is left
            with pytest.raises(OSError) as e:
                spool.put(run(i, pad=20_000))
            assert e.value.errno == errno.ENOSPC
            spool.lose(f"task-{i}", f"cannot spool it: {e.value.strerror}")
    names = os.listdir(spool.dir)
    assert not [n for n in names if n.endswith(".tmp")], names
    # whole or absent: only the first run is there, and it reads back whole
    assert spool.run_ids() == ["task-1"]
    assert spool.dropped() == 3 and Spool(spool.dir).dropped() == 3
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 3, lost  # once per run
    assert "run task-2 lost: cannot spool it: No space left on device (1 lost in all)" in lost[0]


def test_safe_store_on_a_full_disk_logs_each_lost_run_once(
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kubestack_ai.workers.store import SafeStore

    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"
    store = SafeStore(down, spool=small_disk / "spool", timeout=2)
    assert store.spool is not None
    store.spool.clean()  # at start (worker, ksa run): makes the counter
    fill(small_disk, 8192)
    r = run(9, pad=20_000)
    with caplog.at_level(logging.WARNING):
        written, err = store.record_run(r.run_id, r.target_key, r.plugin_id, (), r.result, 60)
    assert written is None and "unavailable" in (err or "")
    assert store.spool.dropped() == 1
    about = [rec.getMessage() for rec in caplog.records if "task-9" in rec.getMessage()]
    assert len(about) == 1, about
    assert "run task-9 lost" in about[0] and "kept in the spool" not in about[0]


def test_leftover_temp_files_are_removed_at_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(run(1))
    dead = subprocess.Popen(["true"])
    dead.wait()
    for i in range(35):  # a crashed writer's zero-byte temps
        (tmp_path / f".{i:020d}-{dead.pid}-{i:016x}.run.json.tmp").write_bytes(b"")
    mine = tmp_path / f".{99:020d}-{os.getpid()}-{99:016x}.run.json.tmp"
    mine.write_bytes(b"{")  # a live writer's, being written now: left alone
    assert Spool(tmp_path).clean() == 35
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [mine.name]
    assert spool.run_ids() == ["task-1"]


@pytest.mark.parametrize(("content", "why"), [
    (b"", "empty file"),
    (b'{"v": 1, "run_id": "task-3", "tar', "not a spooled run: JSONDecodeError"),
], ids=["empty", "truncated"])
def test_a_corrupt_record_is_set_aside_named_with_why_and_counted(
        local: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes,
        why: str) -> None:
    spool = Spool(tmp_path / "spool")
    spool.put(run(1))
    bad = spool.dir / "00000000000000000002-1-00000000000000aa.run.json"
    bad.write_bytes(content)
    with caplog.at_level(logging.ERROR, "kubestack_ai.storage.spool"):
        report = spool.flush(lambda r: r.record(local))
    assert (report.written, report.rejected) == (1, 1)
    [line] = [r.getMessage() for r in caplog.records if bad.name in r.getMessage()]
    assert f"file {bad.name} set aside" in line and why in line, line
    assert "run ?" not in caplog.text
    assert (spool.dir / "rejected" / bad.name).read_bytes() == content
    assert spool.dropped() == 1


def test_metrics_count_the_lost_runs_and_the_kept_ones(local: Store, tmp_path: Path) -> None:
    from kubestack_ai.web import metrics

    spool = Spool(tmp_path / "spool", max_records=2)
    for i in range(3):
        spool.put(run(i))  # the third drops the first
    spool.lose("task-7", "cannot spool it: No space left on device")
    text = metrics.render(local, spool_dir=spool.dir).decode()
    assert "\nksa_spool_lost_runs_total 2.0\n" in text
    assert "\nksa_spool_runs 2.0\n" in text
