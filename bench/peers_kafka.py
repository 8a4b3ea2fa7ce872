"""Side by side, per Kafka consumer scenario of issue 24: Burrow's status (its evaluator,
``tests/kafka/burrow_reference.py``, applied to the consumer's own commits, each with the
high-water mark read just before it, as Burrow's storage records them), a lag alert as
kafka_exporter's users write it (``kafka_consumergroup_lag > 0`` for the whole window),
and what kafka-diagnostics says at each run.

    .venv/bin/python bench/peers_kafka.py            # a Markdown table on stdout

A Tansu broker of its own on a free loopback port (stopped at the end). Runs are 1.5 s
apart (a fleet's interval, shrunk), each given the earlier ones as history; the plugin is
told the test consumers' commit interval (``burrow_commit_interval_seconds``), as an
operator would set it to their auto.commit.interval.ms.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubestack_ai.plugins import PluginConfig, PluginManager, Snapshot  # noqa: E402
from kubestack_ai.plugins.models import utcnow  # noqa: E402
from tests.kafka import burrow_reference as ref  # noqa: E402
from tests.kafka.kafka_helpers import (  # noqa: E402
    Producer,
    Tansu,
    TimerConsumer,
    commit_offsets,
    create_topic,
    diagnose,
    produce,
    target,
    uniq,
)

RUNS, GAP = 4, 1.5
BURROW = ("kafka.consumer.group_stop", "kafka.consumer.group_stall",
          "kafka.consumer.group_rewind", "kafka.consumer.group_warn")


def runs(manager: PluginManager, bootstrap: str, group: str) -> list[str]:
    """Each run's verdict on ``group``: its Burrow finding (severity, status), or OK."""
    history: tuple[Snapshot, ...] = ()
    out = []
    for i in range(RUNS):
        if i:
            time.sleep(GAP)
        r = diagnose(manager, target(bootstrap), "consumer", history=history)
        history = (*history, Snapshot(at=utcnow(), metrics=r.metrics))[-10:]
        found = [f for f in r.findings if f.code in BURROW and f.evidence.get("group") == group]
        lag = r.metrics["group_lag"].get(group)
        out.append(f"{found[0].severity.name} {found[0].evidence['status']}" if found
                   else f"OK (lag {lag})")
    return out


def empty_lagging(b: str) -> tuple[str, Any]:
    topic, group = uniq("orders"), uniq("invoicer")
    create_topic(b, topic, 1)
    produce(b, topic, {0: 6})
    commit_offsets(b, group, topic, {0: 2})
    return group, [(time.time(), 2, 6)]


def empty_caught_up(b: str) -> tuple[str, Any]:
    topic, group = uniq("orders"), uniq("archiver")
    create_topic(b, topic, 1)
    produce(b, topic, {0: 6})
    commit_offsets(b, group, topic, {0: 6})
    return group, [(time.time(), 6, 6)]


def consumer(delay: float) -> Callable[[str], tuple[str, Any]]:
    def start(b: str) -> tuple[str, Any]:
        topic, group = uniq("clicks"), uniq("sessionizer")
        create_topic(b, topic, 1)
        producer = Producer(b, topic, 1, every=0.01)
        c = TimerConsumer(b, group, topic, every=0.5, max_records=10, delay=delay)
        time.sleep(1.0)
        return group, (c, producer)
    return start


SCENARIOS: list[tuple[str, Callable[[str], tuple[str, Any]]]] = [
    ("24.4 a group that committed once, left (Empty) and lags 4", empty_lagging),
    ("24.4' look-alike: the same, caught up before it left", empty_caught_up),
    ("24.5 a consumer whose lag grows at every commit (~50 msg/s in, ~20 out)", consumer(0.5)),
    ("24.5' look-alike: the same traffic, a consumer that keeps up", consumer(0.0)),
]


def burrow_status(log: Any, lag: int) -> str:
    if isinstance(log, list):
        return ref.status(ref.commits_from_log(log), [], lag, time.time())
    c, _ = log
    return ref.status(ref.commits_from_log(c.log[0]), [], lag, time.time())


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ksa-peers-kafka-"))
    broker = Tansu(tmp)
    manager = PluginManager()
    manager.load_builtin("kafka-diagnostics", PluginConfig(thresholds={
        "lag_sample_seconds": 0.4, "burrow_commit_interval_seconds": 0.5}))
    print("| scenario | Burrow (evaluator on the consumer's commits) | lag > 0 alert | "
          "kafka-diagnostics, runs 1..4 |")
    print("|---|---|---|---|")
    try:
        for name, start in SCENARIOS:
            group, log = start(broker.bootstrap)
            try:
                ours = runs(manager, broker.bootstrap, group)
                r = diagnose(manager, target(broker.bootstrap), "consumer")
                lag = int(r.metrics["group_lag"].get(group, 0))
                burrow = burrow_status(log, lag)
            finally:
                if not isinstance(log, list):
                    c, producer = log
                    c.close()
                    producer.close()
            alert = "firing" if lag > 0 else "—"
            print(f"| {name} | {burrow} | {alert} | {' → '.join(ours)} |", flush=True)
    finally:
        manager.stop_all()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
