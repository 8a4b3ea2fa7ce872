"""Actions through the manager: whitelisted, dangerous ones refused unless allowed by name,
every attempt audited, and Kafka's own preconditions checked before anything is sent."""

from __future__ import annotations

from kubestack_ai.plugins import ActionRefusedError

from .kafka_helpers import commit_offsets, consume_in_group, create_topic, diagnose, produce, target, uniq


def audited(manager):  # type: ignore[no-untyped-def]
    records: list[dict] = []
    manager.audit_hooks.append(records.append)
    return records


def test_reset_offsets_latest_is_refused_unless_the_target_allows_it(broker, manager) -> None:
    topic, group = uniq("reset"), uniq("batch")
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, {0: 6, 1: 2})
    commit_offsets(broker.bootstrap, group, topic, {0: 1, 1: 0})
    records = audited(manager)

    out = manager.execute(target(broker.bootstrap), "reset_offsets_latest", {"group": group})
    assert isinstance(out.error, ActionRefusedError)
    assert "allow it by name" in str(out.error)
    assert records[-1]["action"] == "reset_offsets_latest" and records[-1]["ok"] is False

    allowed = target(broker.bootstrap, allow_actions=["reset_offsets_latest"])
    # a dry run names each partition's move and commits nothing
    out = manager.execute(allowed, "reset_offsets_latest", {"group": group}, dry_run=True)
    assert out.ok, out.error
    assert out.value == {"group": group, "dry_run": True,
                         "would_commit": {f"{topic}:0": {"from": 1, "to": 6},
                                          f"{topic}:1": {"from": 0, "to": 2}}}
    assert records[-1]["dry_run"] is True and records[-1]["outcome"] == "succeeded"
    out = manager.execute(allowed, "describe_group", {"group": group})
    assert out.value["partitions"][f"{topic}:0"] == {"committed": 1, "lag": 5}

    out = manager.execute(allowed, "reset_offsets_latest", {"group": group})
    assert out.ok, out.error
    assert out.value == {"group": group, "partitions": {f"{topic}:0": {"from": 1, "to": 6},
                                                        f"{topic}:1": {"from": 0, "to": 2}}}
    assert records[-1]["ok"] is True and records[-1]["params"] == {"group": group}
    r = diagnose(manager, allowed, "consumer")
    assert r.metrics["group_lag"][group] == 0


def test_reset_refuses_a_group_with_active_members(broker, manager) -> None:
    topic, group = uniq("live"), uniq("online")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 3})
    consumer = consume_in_group(broker.bootstrap, group, topic, {0: 1})
    try:
        allowed = target(broker.bootstrap, allow_actions=["reset_offsets_latest"])
        out = manager.execute(allowed, "reset_offsets_latest", {"group": group})
    finally:
        consumer.close()
    assert out.error is not None
    assert f"group '{group}' has 1 active member(s)" in str(out.error)


def test_describe_group_is_safe_and_needs_no_allowance(broker, manager) -> None:
    topic, group = uniq("desc"), uniq("reader")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 5})
    commit_offsets(broker.bootstrap, group, topic, {0: 2})
    out = manager.execute(target(broker.bootstrap), "describe_group", {"group": group})
    assert out.ok, out.error
    assert out.value["lag"] == 3 and out.value["state"] == "Empty"
    assert out.value["partitions"] == {f"{topic}:0": {"committed": 2, "lag": 3}}


def test_undeclared_action_and_missing_parameter(broker, manager) -> None:
    out = manager.execute(target(broker.bootstrap), "delete_topic", {"topic": "x"})
    assert isinstance(out.error, ActionRefusedError) and "not declared" in str(out.error)
    out = manager.execute(target(broker.bootstrap), "describe_group", {})
    assert str(out.error) == ("plugin 'kafka-diagnostics': action 'describe_group': missing "
                              "required parameter(s) group")
    out = manager.execute(target(broker.bootstrap), "describe_group", {"group": 5, "grp": "a"})
    assert str(out.error) == ("plugin 'kafka-diagnostics': action 'describe_group': unknown "
                              "parameter(s) grp (known: dry_run, group); group: 5 is not of "
                              "type 'string'")
