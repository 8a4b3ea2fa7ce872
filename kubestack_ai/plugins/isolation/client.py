"""The worker's side of a plugin host: start it, keep it warm, send it runs, replace it.

:class:`HostPool` keeps one :class:`PluginHost` per (plugin, target), at most
``KSA_PLUGIN_HOSTS`` of them per worker child (least recently used goes first). A host
is replaced when it died, overran its run's hard limit, its run timed out (a thread
of the plugin may still be busy), or its plugin's generation or config changed.

A host that dies or is killed costs its run only: the run's result says how it ended
(``killed``) and why, with what the host used.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..discovery import MANIFEST_NAMES, plugin_dirs
from ..execution import ActionRecord, AuditSink, redact
from ..logcontext import get_logger
from ..models import (
    DiagnoseOptions,
    DiagnosticResult,
    MiddlewareTarget,
    PluginConfig,
    RunOutcome,
    Status,
    utcnow,
)
from . import cgroups, grants, layers, protocol, seccomp
from .cgroups import CGroup, Limits
from .forks import Forked, ZygoteError, spawn
from .netbroker import NetPolicy
from .policy import PluginRef

log = get_logger(__name__)

START_TIMEOUT = 15.0
"""Seconds a host may take to start, confine itself and load its plugin."""
HOSTS_ENV = "KSA_PLUGIN_HOSTS"


class HostFailure(Exception):
    """The host died, overran or broke the protocol: the run's ``_run`` error."""

    def __init__(self, why: str, outcome: RunOutcome = "killed",
                 resources: dict[str, Any] | None = None) -> None:
        super().__init__(why)
        self.outcome = outcome
        self.resources = resources or {}


def hidden_paths(ref: PluginRef, environ: dict[str, str] | None = None) -> list[str]:
    """What the host must not see: the worker's state, secrets, other plugins' folders."""
    env = os.environ if environ is None else environ
    home = Path(env.get("KSA_HOME") or Path.home() / ".ksa").expanduser()
    hide = [str(home), "/etc/shadow", "/etc/gshadow", "/run/secrets", "/root"]
    hide += [p for p in env.get("KSA_SECRET_DIRS", "").split(os.pathsep) if p]
    db = env.get("KSA_DATABASE_URL", "")
    if db.startswith("sqlite:///"):
        hide.append(str(Path(db[len("sqlite:///"):]).parent))
    own = Path(ref.root).resolve() if ref.root else None
    dirs = plugin_dirs(env=env)
    folder_plugin = ref.path is not None and Path(ref.path).name in MANIFEST_NAMES
    if own is not None and folder_plugin and own.parent not in dirs:
        dirs.append(own.parent)  # the folder it came from (ksa --plugin-dir, reload --from)
    for d in dirs:
        try:
            children = list(d.iterdir())
        except OSError:
            continue
        for child in children:
            r = child.resolve()
            if own is not None and (r == own or own.is_relative_to(r)):
                continue
            if own is not None and ref.path and r == Path(ref.path).resolve():
                continue
            hide.append(str(child))
    keep = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    if own is not None:
        keep.append(own)
    out = []
    for h in hide:
        hp = Path(h).resolve()
        if any(k == hp or k.is_relative_to(hp) for k in keep):
            continue  # hiding it would hide the Python install or the plugin itself
        if os.path.lexists(h):
            out.append(h)
    return out


def _describe(code: int | None, cg: CGroup | None, memory_mb: int | None) -> str:
    if code is None:
        return "the plugin host stopped answering"
    if code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGKILL and cg is not None and cg.oom_kills():
            return f"the plugin host was killed at its memory limit ({memory_mb} MB)"
        if sig == signal.SIGXCPU:
            return "the plugin host used up its CPU time for the run (SIGXCPU)"
        what = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
                signal.SIGABRT: "abort", signal.SIGKILL: "killed",
                signal.SIGILL: "illegal instruction"}.get(signal.Signals(sig), "signal")
        return f"the plugin host crashed ({name}, {what})"
    return f"the plugin host exited with status {code} (plugin code ended the process)"


class PluginHost:
    """One running host process for one plugin (and one target's runs)."""

    def __init__(self, ref: PluginRef, config: PluginConfig, generation: int | None) -> None:
        self.ref, self.config, self.generation = ref, config, generation
        self.proc: Forked | None = None
        self.sock: socket.socket | None = None
        self.life: socket.socket | None = None
        self.cgroup: CGroup | None = None
        self.layers: dict[str, Any] = {}
        self.start_seconds = 0.0
        self.idle_rss_mb = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.running

    def start(self) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        limits = Limits(cfg.memory_limit_mb, cfg.cpu_limit_pct, cfg.pids_max)
        self.cgroup, cg_why = CGroup.create(f"{os.getpid()}-{id(self):x}", limits)
        ns = layers.namespaces_available()
        parent, child = socket.socketpair()
        life_parent, life_child = socket.socketpair()
        try:
            self.proc = spawn(ns, child.fileno(), life_child.fileno())
        except ZygoteError as e:
            parent.close()
            life_parent.close()
            if self.cgroup is not None:
                self.cgroup.remove()
            raise HostFailure(str(e), "failed") from None
        finally:
            child.close()
            life_child.close()
        self.sock, self.life = parent, life_parent
        procs = ([str(d / "cgroup.procs") for d in set(self.cgroup.dirs.values())]
                 if self.cgroup else [])
        setup = {"plugin": {"id": self.ref.plugin_id, "kind": self.ref.kind,
                            "path": self.ref.path},
                 "config": cfg.model_dump(mode="json"),
                 "memory_mb": cfg.memory_limit_mb, "pids_max": cfg.pids_max,
                 "seccomp": seccomp.unavailable() is None, "mount_namespace": bool(ns),
                 "broker_network": bool(ns), "root": self.ref.root,
                 "hide": hidden_paths(self.ref) if ns else [],
                 "cgroup_procs": procs}
        try:
            protocol.send(parent, setup)
            parent.settimeout(START_TIMEOUT)
            ready, _ = protocol.recv(parent)
        except (OSError, protocol.ProtocolError) as e:
            code = self._reap(1.0)
            why = _describe(code, self.cgroup, cfg.memory_limit_mb) if code is not None else str(e)
            self.kill()
            raise HostFailure(f"plugin host did not start: {why}", "failed") from None
        except BaseException:  # interrupted (a soft time limit): no half-started host
            self.kill()
            raise
        if not ready.get("ok"):
            self.kill()
            raise HostFailure(f"plugin host could not load the plugin: {ready.get('error')}",
                              "failed")
        self.layers = dict(ready.get("layers") or {})
        if self.cgroup is not None:
            self.layers["cgroup"] = f"v{self.cgroup.version}"
        else:
            self.layers["cgroup"] = f"none: {cg_why}"
        self.idle_rss_mb = float(ready.get("idle_rss_mb") or 0.0)
        broken = {k: v for k, v in self.layers.items()
                  if isinstance(v, str) and v.startswith(("failed", "partial"))}
        if broken and layers.strict():
            self.kill()
            raise HostFailure(f"{layers.STRICT_ENV}=strict and the plugin host could not set up "
                              + "; ".join(f"{k} ({v})" for k, v in broken.items()), "failed")
        self.start_seconds = time.perf_counter() - t0
        log.info("plugin host for %s started in %.0f ms (pid %s)", self.ref.plugin_id,
                 self.start_seconds * 1e3, self.proc.pid if self.proc else "?")

    def _reap(self, wait: float) -> int | None:
        return None if self.proc is None else self.proc.wait(wait)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
        if self.cgroup is not None:
            self.cgroup.kill_all()
            self.cgroup.remove()
            self.cgroup = None
        for s in (self.sock, self.life):
            if s is not None:
                s.close()
        self.sock = self.life = None

    def describe(self, hard_limit: float = 60.0) -> list[dict[str, Any]]:
        """The plugin's middleware type, categories and config, as its host loaded it (the
        worker learns its task types so, without importing external code)."""
        assert self.sock is not None
        self.sock.settimeout(hard_limit)
        try:
            protocol.send(self.sock, {"op": "describe"})
            answer, fds = protocol.recv(self.sock)
        except (OSError, protocol.ProtocolError) as e:
            self.kill()
            raise HostFailure(f"the plugin host did not describe its plugin: {e}") from None
        for fd in fds:
            os.close(fd)
        return list(answer.get("plugins") or [])

    def call(self, msg: dict[str, Any], target: MiddlewareTarget, hard_limit: float,
             handlers: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
             ) -> dict[str, Any]:
        """Send one request; serve the host's network requests (and ``handlers``' ops)
        until its answer. Raises HostFailure (the host is killed then) when it dies or
        overruns."""
        assert self.sock is not None
        net = NetPolicy.for_target(target)
        if self.cgroup is not None:
            self.cgroup.reset_peak()
        t0 = time.perf_counter()
        done = False
        try:
            protocol.send(self.sock, msg)
            while True:
                left = hard_limit - (time.perf_counter() - t0)
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                answer, fds = protocol.recv(self.sock)
                for fd in fds:
                    os.close(fd)
                op = answer.get("op")
                if op == "result":
                    done = True
                    res = dict(answer.get("resources") or {})
                    if net.refused:
                        res["refused_network"] = net.refused
                    res["isolation"] = self._summary()
                    answer["resources"] = res
                    return answer
                if op == "resolve":
                    protocol.send(self.sock, net.resolve(str(answer.get("host")),
                                                         self.config.timeouts.connect))
                elif handlers and op in handlers:
                    protocol.send(self.sock, handlers[str(op)](answer))
                elif op == "connect":
                    reply, s = net.connect(str(answer.get("host")), int(answer.get("port", 0)),
                                           int(answer.get("family", socket.AF_INET)),
                                           self.config.timeouts.connect)
                    if s is not None:
                        with s:
                            protocol.send(self.sock, reply, (s.fileno(),))
                    else:
                        protocol.send(self.sock, reply)
                else:
                    protocol.send(self.sock, {"ok": False, "error": f"unknown request {op!r}"})
        except TimeoutError:
            resources = self._dead_resources(t0, net)
            self.kill()
            raise HostFailure(f"the plugin host overran its hard limit ({hard_limit:.0f} s) "
                              "and was killed", "killed", resources) from None
        except (OSError, protocol.ProtocolError):
            code = self._reap(2.0)
            resources = self._dead_resources(t0, net)
            why = _describe(code, self.cgroup, self.config.memory_limit_mb)
            self.kill()
            raise HostFailure(why, "killed", resources) from None
        finally:
            if not done and self.alive:
                self.kill()  # interrupted mid-run (a soft time limit): its state is unknown

    def _dead_resources(self, t0: float, net: NetPolicy) -> dict[str, Any]:
        res: dict[str, Any] = {"wall_seconds": round(time.perf_counter() - t0, 4),
                               "isolation": self._summary()}
        if self.cgroup is not None:
            peak = self.cgroup.peak_bytes()
            if peak:
                res["peak_rss_mb"] = round(peak / 2**20, 1)
        if net.refused:
            res["refused_network"] = net.refused
        return res

    def _summary(self) -> str:
        active = [k if not (isinstance(v, str) and v.startswith("partial")) else f"{k}(partial)"
                  for k, v in self.layers.items()
                  if v and not (isinstance(v, str) and v.startswith(("none", "failed")))]
        return ",".join(sorted(active))


class HostPool:
    """The warm hosts of one worker child (or CLI process)."""

    def __init__(self, max_hosts: int | None = None) -> None:
        self.max_hosts = max_hosts or int(os.environ.get(HOSTS_ENV, "4") or 4)
        cgroups.sweep()  # what hosts of dead workers left
        self.hosts: collections.OrderedDict[tuple[str, str], PluginHost] = \
            collections.OrderedDict()

    def _host(self, ref: PluginRef, config: PluginConfig, generation: int | None,
              target: MiddlewareTarget) -> PluginHost:
        key = (ref.plugin_id, target.key)
        host = self.hosts.get(key)
        if host is not None and (not host.alive or host.config != config
                                 or host.generation != generation or host.ref != ref):
            host.kill()
            del self.hosts[key]
            host = None
        if host is None:
            while len(self.hosts) >= self.max_hosts:
                _, old = self.hosts.popitem(last=False)
                old.kill()
            host = PluginHost(ref, config, generation)
            host.start()
            self.hosts[key] = host
        self.hosts.move_to_end(key)
        return host

    def retire(self, plugin_id: str) -> None:
        """Kill every host of ``plugin_id`` (reloaded, disabled)."""
        for key in [k for k in self.hosts if k[0] == plugin_id]:
            self.hosts.pop(key).kill()

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill()
        self.hosts.clear()

    def run(self, op: str, ref: PluginRef, config: PluginConfig, generation: int | None,
            target: MiddlewareTarget, options: DiagnoseOptions | None = None,
            timeout: float | None = None) -> DiagnosticResult:
        """A diagnosis (``diagnose``) or health check (``health``) in the plugin's host."""
        options = options or DiagnoseOptions()
        t = config.timeouts
        budget = timeout if timeout is not None else (t.diagnose if op == "diagnose"
                                                      else t.health_check)
        # the run (connect included) ends by the budget in the host; past it, a margin
        # within Celery's grace (its hard limit would take the worker child)
        hard = budget + min(t.grace, 5.0)
        started = utcnow()
        t0 = time.perf_counter()
        refs = grants.references(target, config)
        msg: dict[str, Any] = {"op": op, "target": target.model_dump(mode="json"),
                               "options": options.model_dump(mode="json"), "timeout": budget,
                               "cpu_seconds": hard * max(1.0, (config.cpu_limit_pct or 100) / 100)}
        for attempt in (1, 2):
            granted = grants.resolve(refs)
            msg["secrets"] = granted
            try:
                host = self._host(ref, config, generation, target)
                answer = host.call(msg, target, hard)
                try:
                    result = DiagnosticResult.model_validate(answer.get("result"))
                except ValueError:
                    host.kill()
                    raise HostFailure("the plugin host answered with no valid result "
                                      "(killed)", "failed", answer.get("resources")) from None
            except HostFailure as e:
                self.hosts.pop((ref.plugin_id, target.key), None)
                log.warning("plugin %s on %s: %s", ref.plugin_id, target.key, e)
                return DiagnosticResult(
                    plugin_id=ref.plugin_id, target_name=target.name, status=Status.UNKNOWN,
                    started_at=started, duration=time.perf_counter() - t0,
                    errors={"_run": str(e)}, categories=options.categories,
                    outcome=e.outcome, resources=e.resources or None)
            # who ran on what is the worker's to say, not the host's
            result = result.model_copy(update={"resources": answer.get("resources"),
                                               "plugin_id": ref.plugin_id,
                                               "target_name": target.name})
            if result.outcome == "timed_out":
                self.hosts.pop((ref.plugin_id, target.key)).kill()
            if attempt == 1 and _auth_failed(result) and refs \
                    and grants.resolve(refs, fresh=True) != granted:
                log.info("plugin %s on %s: authentication refused; the secret changed, "
                         "retrying once with the new value", ref.plugin_id, target.key)
                continue
            return result
        return result


    def execute(self, ref: PluginRef, config: PluginConfig, generation: int | None,
                target: MiddlewareTarget, action: str, params: Mapping[str, Any], *,
                allow: tuple[str, ...] = (), dry_run: bool = False, who: str = "",
                audit: AuditSink | None = None) -> tuple[ActionRecord, Any, str | None]:
        """An action in the plugin's host: (final record, audit handle, audit error). The
        audit log stays the worker's: the host's ``begin``/``end`` come here, with the
        identity fields (who, plugin, target, action, parameters) set by the worker, so
        a host cannot write another action's record."""
        ident = {"who": who, "plugin_id": ref.plugin_id, "target": target.key,
                 "endpoints": target.endpoints, "action": action, "dry_run": dry_run,
                 "params": redact(dict(params))}
        begun: list[tuple[Any, ActionRecord]] = []

        def record(msg: dict[str, Any]) -> ActionRecord:
            rec = ActionRecord.model_validate(msg["record"]).model_copy(update=ident)
            return rec.model_copy(update={"result": redact(rec.result)})

        def begin(msg: dict[str, Any]) -> dict[str, Any]:
            if audit is None:
                return {"ok": True, "handle": None}
            try:
                rec = record(msg)
                handle = audit.begin(rec)
            except Exception as e:  # fail closed: the host refuses the action
                return {"ok": False, "error": f"{type(e).__name__}: {e}"}
            begun.append((handle, rec))
            return {"ok": True, "handle": handle}

        def end(msg: dict[str, Any]) -> dict[str, Any]:
            if audit is None:
                return {"ok": True}
            try:
                handle = begun[-1][0] if begun else msg.get("handle")
                audit.end(handle, record(msg))
            except Exception as e:  # the host says the record is incomplete
                return {"ok": False, "error": f"{type(e).__name__}: {e}"}
            begun.clear()
            return {"ok": True}

        t = config.timeouts
        t0 = time.perf_counter()
        hard = t.connect + t.execute + min(t.grace, 5.0)
        msg: dict[str, Any] = {"op": "execute", "target": target.model_dump(mode="json"),
                               "action": action, "params": dict(params), "allow": list(allow),
                               "dry_run": dry_run, "who": who, "cpu_seconds": hard,
                               "secrets": grants.resolve(grants.references(target, config))}
        try:
            host = self._host(ref, config, generation, target)
            answer = host.call(msg, target, hard, {"audit_begin": begin, "audit_end": end})
        except HostFailure as e:
            self.hosts.pop((ref.plugin_id, target.key), None)
            update = {"outcome": "killed" if begun else "failed", "error": str(e),
                      "duration": round(time.perf_counter() - t0, 6)}
            rec = (begun[-1][1].model_copy(update=update) if begun else
                   ActionRecord(at=utcnow(), **ident, **update))
            err = None
            if begun and audit is not None:
                try:
                    audit.end(begun[-1][0], rec)
                except Exception as ae:  # noqa: BLE001 (said in the answer)
                    err = f"{type(ae).__name__}: {ae}"
            return rec, begun[-1][0] if begun else None, err
        try:
            rec = record({"record": answer.get("record")})
        except ValueError:
            rec = ActionRecord(at=utcnow(), outcome="failed", error="the plugin host answered "
                               "with no valid action record", **ident)
        return rec, answer.get("audit_handle"), answer.get("audit_error")


def _auth_failed(result: DiagnosticResult) -> bool:
    return any(f.code.endswith(".connection.auth_failed") for f in result.findings)
