"""The embedded broker (filesystem://, what ``ksa run`` uses without a server): a message
file is whole or absent, and a file that is empty or does not parse is set aside in
``$KSA_HOME/broker/quarantine`` with one log line, never a crash of the worker (kombu's
own transport dies on it: kombu issue #1551)."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import Worker, client_app, worker_env

pytestmark = pytest.mark.timeout(90)


def _fs_env(home: Path) -> dict[str, str]:
    return worker_env(home, KSA_BROKER_URL="filesystem://", KSA_RESULT_BACKEND="")


def _msg_name(queue: str) -> str:
    # kombu's naming: <monotonic ms>_<uuid>.<queue>.msg; 0 sorts before any real message
    return f"0_{uuid.uuid4()}.{queue}.msg"


def test_worker_sets_an_empty_and_a_garbled_message_file_aside(tmp_path: Path) -> None:
    from kubestack_ai.storage import Store

    home = tmp_path
    store = Store(f"sqlite:///{home}/ksa.db")
    store.migrate()
    queue = home / "broker" / "queue"
    queue.mkdir(parents=True)
    # a consumer claimed a file its producer had created and not yet written (#1551),
    # and one a foreign writer left truncated
    empty, garbled = _msg_name("celery"), _msg_name("tcp")
    (queue / empty).write_bytes(b"")
    (queue / garbled).write_bytes(b'{"body": "eyJh')
    env = _fs_env(home)
    app = client_app(env)
    # queued while no worker runs: kept on disk until one starts
    res = app.send_task("diagnose.tcp", kwargs={
        "target": {"name": "fsq", "endpoints": ["127.0.0.1:6379"]}, "force": True})
    w = Worker(home, env, name="fsq")
    try:
        w.wait_ready()
        t0 = time.monotonic()
        while not store.history("tcp:fsq") and time.monotonic() - t0 < 30:
            assert w.proc.poll() is None, w.log.read_text()[-3000:]
            time.sleep(0.2)
        assert [r.run_id for r in store.history("tcp:fsq")] == [res.id], \
            w.log.read_text()[-3000:]
        assert w.proc.poll() is None
        quarantine = home / "broker" / "quarantine"
        while len(list(quarantine.iterdir())) < 2 and time.monotonic() - t0 < 30:
            time.sleep(0.2)  # each queue is polled in turn: the other one may come later
        assert sorted(p.name for p in quarantine.iterdir()) == sorted([empty, garbled])
        log = w.log.read_text()
        assert "Unrecoverable error" not in log
        for name, why in ((empty, "empty"), (garbled, "not a message")):
            lines = [ln for ln in log.splitlines() if name in ln]
            assert len(lines) == 1, lines
            assert f"broker: {why}: set {queue / name} aside in {quarantine}" in lines[0]
        assert not list(queue.glob("*.msg"))
        # fanout (remote control, the events Flower shows) still works on this transport
        replies = app.control.inspect(timeout=5).ping() or {}
        assert [name.split("@")[0] for name in replies] == [f"fsq-{os.getpid()}"]
    finally:
        app.close()
        w.stop()
        store.dispose()


# -- the transport on its own: processes publishing and consuming at once ---------------

def _channel(home: Path) -> Any:
    from kombu import Connection

    from kubestack_ai.workers.limits import broker_options
    from kubestack_ai.workers.settings import Settings

    settings = Settings.from_env({"KSA_HOME": str(home)})
    from kubestack_ai.workers.fsbroker import transport_url

    conn = Connection(transport_url(settings), transport_options=broker_options(settings, 40))
    return conn, conn.default_channel


def _produce(home: str, n: int, tag: str) -> None:
    conn, ch = _channel(Path(home))
    body = "x" * 20000  # big enough that a write is not one page
    for i in range(n):
        ch._put("q", {"body": body, "id": f"{tag}-{i}"})
    conn.release()


def _consume(home: str, out: Any) -> None:
    from queue import Empty

    conn, ch = _channel(Path(home))
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:  # until the test ends it
        try:
            out.put(("ids", [ch._get("q")["id"]]))
        except Empty:
            time.sleep(0.001)
        except Exception as e:  # a crash: reported, not hidden
            out.put(("error", repr(e)))
            return
    conn.release()


def test_concurrent_producers_and_consumers_each_message_once_whole(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    n, producers, consumers = 400, 2, 2
    procs = [ctx.Process(target=_consume, args=(str(tmp_path), out))
             for _ in range(consumers)]
    procs += [ctx.Process(target=_produce, args=(str(tmp_path), n, f"p{k}"))
              for k in range(producers)]
    for p in procs:
        p.start()
    seen: list[str] = []
    errors: list[str] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and len(seen) < n * producers and not errors:
        try:
            kind, val = out.get(timeout=1)
        except Exception:
            continue
        if kind == "ids":
            seen += val
        else:
            errors.append(val)
    for p in procs:
        if p in procs[:consumers]:
            p.terminate()
        p.join(timeout=10)
    assert errors == []
    assert sorted(seen) == sorted(f"p{k}-{i}" for k in range(producers) for i in range(n))
    broker = tmp_path / "broker"
    assert not (broker / "quarantine").exists() or not list((broker / "quarantine").iterdir())
    assert list((broker / "queue").iterdir()) == []


def test_a_failed_write_leaves_no_message_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk cannot be had on demand here: fsync failing stands in for it."""
    from kombu.exceptions import ChannelError

    conn, ch = _channel(tmp_path)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ChannelError, match="No space left on device"):
        ch._put("q", {"body": "x"})
    monkeypatch.undo()
    broker = tmp_path / "broker"
    assert list((broker / "queue").iterdir()) == []
    assert list((broker / "tmp").iterdir()) == []
    conn.release()


def test_a_claim_whose_consumer_died_goes_back_to_the_queue(tmp_path: Path) -> None:
    """A consumer killed between its claim (rename into processed/) and its read: the
    next transport to start puts the message back; a writer killed before its rename
    leaves a file in tmp/ that is removed. Both only once older than STALE_TMP (by
    ctime, which a rename sets and a test cannot set back: the limit is lowered)."""
    from kubestack_ai.workers import fsbroker

    conn, ch = _channel(tmp_path)
    ch._put("q", {"body": "kept", "id": "one"})
    broker = tmp_path / "broker"
    [msg] = list((broker / "queue").iterdir())
    os.rename(msg, broker / "processed" / msg.name)  # claimed, never read
    (broker / "tmp" / "x.q.msg").write_bytes(b'{"body": "ha')  # never renamed
    conn.release()
    conn, ch = _channel(tmp_path)  # young: a claim or a write in progress, left alone
    assert [p.name for p in (broker / "processed").iterdir()] == [msg.name]
    assert [p.name for p in (broker / "tmp").iterdir()] == ["x.q.msg"]
    conn.release()
    real = fsbroker.STALE_TMP
    fsbroker.STALE_TMP = -1.0
    try:
        conn, ch = _channel(tmp_path)
    finally:
        fsbroker.STALE_TMP = real
    assert list((broker / "processed").iterdir()) == []
    assert list((broker / "tmp").iterdir()) == []
    assert ch._get("q")["id"] == "one"
    conn.release()
