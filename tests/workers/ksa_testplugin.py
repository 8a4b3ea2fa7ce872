"""faulty-diagnostics: a small real plugin that misbehaves on request, for the worker
reliability tests. Loaded by workers through KSA_PLUGIN_MODULES=ksa_testplugin.

target.options.behaviour:
  ok      one finding, returns at once
  hang    finds something, then sleeps far past the soft limit (interruptible)
  busy    spins in one long C call (and swallows every Exception), so the soft
          limit cannot interrupt it and only the hard limit stops it
  alloc   allocates without bound (the memory cap turns it into MemoryError)
  sleep   writes its pid to options.pidfile, sleeps options.seconds, then ok
  secret  resolves the target's password reference and checks it arrived
  stall   reads nothing until its deadline has passed (a server that stopped answering)

action nap: sleeps params.seconds (the action task's limits: connect 1 + execute 2 s);
  params.pidfile: writes its pid there first; params.stubborn: sleeps on through the
  soft time limit (only the hard limit stops it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from kubestack_ai.plugins import (
    MiddlewarePlugin,
    PluginConfig,
    PluginInfo,
    Run,
    Severity,
    Timeouts,
    category,
    register_builtin,
    resolve_secret,
)
from kubestack_ai.plugins.deadline import Deadline
from kubestack_ai.plugins.errors import AuthError
from kubestack_ai.plugins.models import MiddlewareTarget

INFO = PluginInfo(id="faulty-diagnostics", name="Faulty test plugin", version="0.1.0",
                  description="Misbehaves on request (tests only).",
                  actions=("nap",))

CONFIG = PluginConfig(timeouts=Timeouts(connect=1.0, diagnose=2.0, grace=2.0,
                                        health_check=1.0, execute=2.0),
                      memory_limit_mb=600)


class FaultyPlugin(MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self.config = CONFIG
        self.connects = 0

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "faulty"

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        self.connects += 1
        if target.options.get("behaviour") == "secret":
            assert target.auth is not None
            if resolve_secret(target.auth.password) != os.environ.get("KSA_EXPECT_SECRET"):
                raise AuthError("password refused")
        self.target = target

    def prepare(self, run: Run) -> None:
        if run.target.options.get("behaviour") == "stall":
            time.sleep(max(0.0, run.deadline.remaining()) + 0.1)

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        """``nap``: sleep ``seconds`` (past the action task's soft limit, if asked)."""
        if params.get("pidfile"):
            with open(str(params["pidfile"]), "a") as fh:
                fh.write(f"{os.getpid()}\n")
        end = time.monotonic() + float(params.get("seconds", 0))
        while (left := end - time.monotonic()) > 0:
            try:
                time.sleep(left)
            except BaseException:  # the soft limit's exception, swallowed if stubborn
                if not params.get("stubborn"):
                    raise
        return {"napped": params.get("seconds", 0)}

    @category("work")
    def check_work(self, run: Run) -> None:
        behaviour = run.target.options.get("behaviour", "ok")
        run.metric("pid", os.getpid())
        run.metric("connects", self.connects)
        run.metric("marker", self.option("marker", ""))
        run.finding("faulty.work.seen", Severity.WARNING, f"behaviour {behaviour}",
                    evidence={"behaviour": behaviour}, suggestion="None: a test plugin.")
        if behaviour == "hang":
            time.sleep(120)
        elif behaviour == "busy":
            # one long call in C: the soft limit's exception waits for it to return
            # (signal handlers run between bytecodes), so only the hard limit stops it
            while True:
                try:
                    sum(range(10**11))
                except Exception:  # noqa: BLE001,S112 (and it swallows the soft limit)
                    continue
        elif behaviour == "alloc":
            hog = []
            while True:
                hog.append(bytearray(32 * 1024 * 1024))
        elif behaviour == "sleep":
            with open(run.target.options["pidfile"], "a", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
            time.sleep(float(run.target.options.get("seconds", 2)))


register_builtin("faulty-diagnostics", FaultyPlugin)
