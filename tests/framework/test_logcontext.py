"""Every log line about a run carries the plugin id and the target key: the framework
sets the context around each call, the sandbox carries it into the plugin's thread."""

from __future__ import annotations

import logging
import threading

import pytest

from kubestack_ai.plugins import (
    LogContextFilter,
    MiddlewareTarget,
    PluginManager,
    Run,
    Sandbox,
    category,
    get_logger,
    log_context,
)
from tests.conftest import port_open, require

from .fakes import FakePlugin

TARGET = MiddlewareTarget(type="fake", name="cache-1", endpoints=("127.0.0.1:1",))
plugin_log = get_logger("tests.framework.loggingplugin")


class LoggingPlugin(FakePlugin):
    """Logs from its check, as a builtin's compat or wire module does mid-diagnosis."""

    @category("alpha")
    def check_alpha(self, run: Run) -> None:
        plugin_log.info("checked %d things", 3)


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


@pytest.mark.parametrize("threaded", [True, False], ids=["cli-thread", "worker-inline"])
def test_a_plugin_log_line_during_a_diagnosis_names_plugin_and_target(caplog, threaded):
    m = PluginManager(sandbox=Sandbox(threaded=threaded))
    m.register(LoggingPlugin())
    with caplog.at_level(logging.DEBUG):
        r = m.diagnose(TARGET)
        plugin_log.info("after")
    assert r.errors == {}
    rec, after = lines(caplog, plugin_log.name)
    assert (rec.plugin_id, rec.target_key) == ("fake", "fake:cache-1")
    # logged from the sandbox's thread (CLI) or the caller's (worker): the context is there
    assert rec.threadName == ("ksa:fake:connect" if threaded else threading.current_thread().name)
    assert rec.getMessage() == "checked 3 things [plugin=fake target=fake:cache-1]"
    # the framework's own lines about the run carry them too
    manager_lines = lines(caplog, "kubestack_ai.plugins.manager")
    assert manager_lines and all(x.target_key == "fake:cache-1" and x.plugin_id == "fake"
                                 for x in manager_lines)
    # and nothing leaks past the call
    assert (after.getMessage(), after.plugin_id, after.target_key) == ("after", None, None)


def test_health_check_and_action_lines_carry_the_context(caplog):
    m = PluginManager()
    m.register(FakePlugin(fail={"connect": "raise"}))
    with caplog.at_level(logging.DEBUG):
        m.health_check(TARGET)
    [rec] = lines(caplog, "kubestack_ai.plugins.manager")
    assert rec.getMessage() == ("health check of cache-1 failed: plugin 'fake' connect: "
                                "RuntimeError: connect exploded "
                                "[plugin=fake target=fake:cache-1]")
    m2 = PluginManager()
    m2.register(FakePlugin())
    m2.audit_hooks.append(lambda record: 1 / 0)  # type: ignore[func-returns-value]
    with caplog.at_level(logging.DEBUG):
        m2.execute(TARGET, "ping")
    [rec] = [r for r in lines(caplog, "kubestack_ai.plugins.manager") if r.exc_info]
    assert (rec.plugin_id, rec.target_key) == ("fake", "fake:cache-1")


def test_a_builtin_plugin_line_names_plugin_and_target(caplog):
    # mysql-diagnostics logs its connect at debug; the shared MariaDB answers
    require(port_open("127.0.0.1", 3306), "MariaDB on 127.0.0.1:3306")
    m = PluginManager()
    target = MiddlewareTarget(type="mysql", name="db-1", endpoints=("127.0.0.1:3306",),
                              auth={"username": "root"})
    with caplog.at_level(logging.DEBUG, logger="kubestack_ai.plugins.mysql"):
        m.health_check(target)
    msgs = [r.getMessage() for r in lines(caplog, "kubestack_ai.plugins.mysql.plugin")]
    assert msgs == ["mysql-diagnostics connected to db-1 "
                    "[plugin=mysql-diagnostics target=mysql:db-1]"]


def test_log_context_nests_and_a_handler_filter_covers_other_loggers():
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.plugin_id}|{record.target_key}|{record.getMessage()}")

    handler = Keep()
    handler.addFilter(LogContextFilter())
    other = logging.getLogger("tests.framework.someclientlib")
    other.addHandler(handler)
    other.setLevel(logging.INFO)
    try:
        with log_context(target="redis:50% full"):
            with log_context(plugin_id="redis-diagnostics"):
                other.info("retry %d", 2)
                other.info("100% literal")
            other.info("outer")
        other.info("none")
    finally:
        other.removeHandler(handler)
    assert seen == [
        "redis-diagnostics|redis:50% full|retry 2 [plugin=redis-diagnostics target=redis:50% full]",
        "redis-diagnostics|redis:50% full|100% literal "
        "[plugin=redis-diagnostics target=redis:50% full]",
        "None|redis:50% full|outer [target=redis:50% full]",
        "None|None|none",
    ]
