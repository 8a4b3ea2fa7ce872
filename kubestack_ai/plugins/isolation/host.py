"""The plugin host: one process that runs one plugin's code for a worker.

Started by :class:`.client.PluginHost` as ``python -I -m kubestack_ai.plugins.isolation.host
SOCK LIFELINE`` with an empty environment (in new namespaces when the kernel allows).
It reads its setup, confines itself (:mod:`.confine`), loads the plugin, answers that it
is ready, then serves ``diagnose``/``health``/``execute`` requests one at a time until
the worker closes the socket. The lifeline is a second socket the worker never writes:
its end (the worker died) ends the host, even mid-run.

Inside, the plugin sees:
- secret references resolved from the grant of the current run only (the worker
  resolves the target's own references and sends the values with the request);
- a socket module whose connections are opened by the worker, after it checked the
  address against the target's endpoints (the host has no network of its own), and
  whose name resolution asks the worker.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import confine, protocol

_rpc_lock = threading.Lock()
_sock: socket.socket | None = None


def rpc(msg: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """A request to the worker from plugin code (any thread), and its answer."""
    assert _sock is not None
    with _rpc_lock:
        protocol.send(_sock, msg)
        return protocol.recv(_sock)


# -- secrets ------------------------------------------------------------------------------

class Grants:
    """The resolved references of the run in progress: ``{ref: {"value"|"error": ...}}``."""

    def __init__(self) -> None:
        self.current: dict[str, dict[str, str]] = {}

    def resolve(self, ref: str | None, environ: Mapping[str, str] | None = None) -> str | None:
        from kubestack_ai.plugins.errors import SecretError

        if ref is None:
            return None
        got = self.current.get(ref)
        if got is None:
            raise SecretError(f"secret reference {ref!r} is not granted to this plugin host: "
                              "only the references of the target being diagnosed are "
                              "resolved, by the worker")
        if "error" in got:
            raise SecretError(got["error"])
        return got["value"]

    def check_target(self, target: Any, environ: Mapping[str, str] | None = None) -> None:
        """The worker checked the references against its policy before granting them; here
        every reference of the target must be one it granted."""
        from kubestack_ai.plugins import secrets
        from kubestack_ai.plugins.errors import SecretError

        for field, ref in secrets.target_references(target):
            got = self.current.get(ref)
            if got is None or "error" in got:
                raise SecretError(f"{field}: " + (got["error"] if got else
                                  f"secret reference {ref!r} is not granted to this plugin "
                                  "host"))


GRANTS = Grants()


def _install_grants() -> None:
    from kubestack_ai.plugins import secrets

    secrets.resolve_secret = GRANTS.resolve
    secrets.check_target_references = GRANTS.check_target


# -- network ------------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _brokered_connect(self: socket.socket, address: Any) -> None:
    if self.family not in (socket.AF_INET, socket.AF_INET6):
        raise PermissionError(1, "refused by the plugin host's network policy: only TCP "
                                 "connections to the target's endpoints")
    host, port = address[0], int(address[1])
    answer, fds = rpc({"op": "connect", "host": host, "port": port,
                       "family": int(self.family), "type": int(self.type) & 0xF})
    if not answer.get("ok") or not fds:
        for fd in fds:
            os.close(fd)
        err = answer.get("errno") or 1
        raise OSError(err, answer.get("error") or "refused by the plugin host's network policy")
    timeout = self.gettimeout()
    os.dup2(fds[0], self.fileno())
    os.close(fds[0])
    self.settimeout(timeout)  # the worker's socket is blocking; keep this socket's mode


def _brokered_connect_ex(self: socket.socket, address: Any) -> int:
    try:
        _brokered_connect(self, address)
    except OSError as e:
        return e.errno or 1
    return 0


def _brokered_getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
    h = host.decode() if isinstance(host, bytes) else host
    try:  # a literal address needs nobody's help (and no name server)
        return _real_getaddrinfo(h, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    answer, _ = rpc({"op": "resolve", "host": h, "port": port, "family": family})
    if not answer.get("ok"):
        raise socket.gaierror(socket.EAI_NONAME, answer.get("error") or "name not resolved")
    try:
        pnum = int(port or 0)
    except ValueError:
        pnum = socket.getservbyname(str(port), "tcp")
    out: list[Any] = []
    for fam, addr in answer["addresses"]:
        if family and fam != family:
            continue
        st = type or socket.SOCK_STREAM
        sa = (addr[0], pnum) if fam == socket.AF_INET else (addr[0], pnum, 0, 0)
        out.append((socket.AddressFamily(fam), socket.SocketKind(st), proto or 6, "", sa))
    if not out:
        raise socket.gaierror(socket.EAI_NONAME, f"{h}: no address of the requested family")
    return out


def _install_network() -> None:
    socket.socket.connect = _brokered_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _brokered_connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = _brokered_getaddrinfo

    def gethostbyname(name: str) -> str:
        return str(_brokered_getaddrinfo(name, 0, socket.AF_INET)[0][4][0])

    socket.gethostbyname = gethostbyname


# -- the audit log (kept by the worker) ---------------------------------------------------

class RpcAudit:
    """The worker's audit log, through the socket: ``begin`` failing refuses the action."""

    def begin(self, record: Any) -> Any:
        answer, _ = rpc({"op": "audit_begin", "record": record.model_dump(mode="json")})
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error") or "audit log refused")
        return answer.get("handle")

    def end(self, handle: Any, record: Any) -> None:
        answer, _ = rpc({"op": "audit_end", "handle": handle,
                         "record": record.model_dump(mode="json")})
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error") or "audit log refused")


# -- children -----------------------------------------------------------------------------

def reap_children() -> int:
    """Kill every process this host started that is still there, and say how many: as
    a subreaper, the orphans of its children come back to it, so its own children (read
    from /proc/self/task/*/children, not a scan of /proc) are all there is to kill, until
    none is left. As PID 1 of its namespace, ``kill(-1)`` reaches the rest at once."""
    killed: set[int] = set()
    for _ in range(100):
        found = _live_children()
        if not found:
            break
        killed.update(found)
        if os.getpid() == 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        for p in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        _wait_all()
        time.sleep(0.001)
    _wait_all()
    return len(killed)


def _wait_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def _live_children() -> list[int]:
    """This process's children that are not zombies."""
    kids: set[int] = set()
    try:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                kids.update(int(k) for k in
                            Path(f"/proc/self/task/{tid}/children").read_text().split())
    except OSError:
        return []
    out = []
    for k in kids:
        try:
            stat = Path(f"/proc/{k}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2:][:1] not in ("Z", "X"):
            out.append(k)
    return out


# -- measurement --------------------------------------------------------------------------

def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _reset_peak() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_kb() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# -- the host ------------------------------------------------------------------------------

def _watch(life: socket.socket) -> None:
    with contextlib.suppress(OSError):
        life.recv(1)
    os._exit(0)  # the worker is gone: so are we (and, as PID 1, everything we started)


def _kept(setup: dict[str, Any]) -> list[str]:
    """What a private /tmp must not hide: the plugin's own folder, and the Python install
    and our package when they live under /tmp (a checkout there, as CI may make)."""
    import kubestack_ai  # noqa: PLC0415

    keep = [setup["root"]] if setup.get("root") else []
    for p in (sys.prefix, sys.base_prefix, os.path.dirname(kubestack_ai.__file__)):
        real = os.path.realpath(p)
        if real not in keep:
            keep.append(real)
    return keep


def _confine(setup: dict[str, Any]) -> dict[str, Any]:
    layers: dict[str, Any] = {}
    confine.prctl(confine.PR_SET_CHILD_SUBREAPER, 1)
    if setup.get("mount_namespace"):
        problems = confine.mount_view(setup.get("hide", []), _kept(setup))
        layers["filesystem"] = "ok" if not problems else "partial: " + "; ".join(problems)
    needed = [sys.prefix, sys.base_prefix, *([setup["root"]] if setup.get("root") else [])]
    layers["user"] = confine.drop_privileges(needed)
    layers["rlimits"] = confine.set_rlimits(setup.get("memory_mb"), setup.get("pids_max"))
    if setup.get("seccomp"):
        try:
            skipped = confine.lock_down()
            layers["seccomp"] = "ok" if not skipped else f"ok (unknown here: {skipped})"
        except (OSError, RuntimeError, ImportError) as e:
            layers["seccomp"] = f"failed: {e}"
    if setup.get("broker_network"):
        _install_network()
        layers["network"] = "brokered"
    return layers


def _load(setup: dict[str, Any]) -> Any:
    from kubestack_ai.plugins import PluginConfig, PluginManager
    from kubestack_ai.plugins.discovery import discover_entry_points

    manager = PluginManager()
    spec = setup["plugin"]
    config = PluginConfig.model_validate(setup["config"])
    if spec["kind"] == "builtin":
        manager.load_builtin(spec["id"], config)
    elif spec["kind"] == "path":
        manager.load_path(spec["path"], config)
    else:
        items = [d for d in discover_entry_points().found if d.name == spec["id"]]
        errors = manager.loader.load_discovered(items, {spec["id"]: config})
        if errors:
            raise errors[0]
    if spec["id"] not in manager.registry:
        from kubestack_ai.plugins.errors import PluginError
        raise PluginError(f"plugin {spec['id']!r} not found where the worker said")
    return manager


def _describe(manager: Any) -> list[dict[str, Any]]:
    """The loaded plugins' ids, middleware types, categories and configs."""
    out = []
    for e in manager.registry.entries():
        cats = getattr(e.plugin, "categories", None)
        out.append({"id": e.info.id, "middleware_type": e.middleware_type,
                    "categories": list(cats()) if callable(cats) else [],
                    "config": e.config.model_dump(mode="json")})
    return out


def _serve(sock: socket.socket, manager: Any) -> None:
    from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget

    while True:
        try:
            msg, fds = protocol.recv(sock)
        except protocol.ProtocolError:
            return
        for fd in fds:
            os.close(fd)
        op = msg.get("op")
        if op == "stop":
            return
        if op == "describe":  # what the worker names its tasks by, without importing
            protocol.send(sock, {"op": "result", "plugins": _describe(manager)})
            continue
        GRANTS.current = msg.get("secrets") or {}
        target = MiddlewareTarget.model_validate(msg["target"])
        if msg.get("cpu_seconds"):
            confine.cpu_budget(float(msg["cpu_seconds"]))
        _reset_peak()
        from kubestack_ai.plugins import children  # noqa: PLC0415

        c0, w0, ended0 = _cpu(), time.perf_counter(), children.ended_total
        reply: dict[str, Any] = {"op": "result"}
        try:
            if op == "diagnose":
                options = DiagnoseOptions.model_validate(msg.get("options") or {})
                r = manager.diagnose(target, options, timeout=msg.get("timeout"))
                reply["result"] = r.model_dump(mode="json")
            elif op == "health":
                r = manager.health_check(target, timeout=msg.get("timeout"))
                reply["result"] = r.model_dump(mode="json")
            elif op == "execute":
                out = manager.execute(target, msg["action"], msg.get("params") or {},
                                      allow=msg.get("allow") or (),
                                      dry_run=bool(msg.get("dry_run")), who=msg.get("who", ""),
                                      audit=RpcAudit())
                reply["record"] = out.record.model_dump(mode="json") if out.record else None
                reply["audit_handle"] = out.audit_handle
                reply["audit_error"] = out.audit_error
            else:
                reply["error"] = f"unknown request {op!r}"
        finally:
            GRANTS.current = {}  # the credentials were for this run only
        reply["resources"] = {"cpu_seconds": round(_cpu() - c0, 4),
                              "peak_rss_mb": round(_peak_kb() / 1024, 1),
                              "wall_seconds": round(time.perf_counter() - w0, 4),
                              "children_killed": reap_children()
                              + children.ended_total - ended0}
        protocol.send(sock, reply)


def main(argv: list[str]) -> int:
    global _sock
    sock = socket.socket(fileno=int(argv[1]))
    life = socket.socket(fileno=int(argv[2]))
    threading.Thread(target=_watch, args=(life,), daemon=True, name="lifeline").start()
    _sock = sock
    setup, _ = protocol.recv(sock)
    for procs in setup.get("cgroup_procs", ()):
        with contextlib.suppress(OSError), open(procs, "w") as f:
            f.write("0")  # into the cgroup the worker made, before any plugin code runs
    layers = _confine(setup)
    _install_grants()
    try:
        manager = _load(setup)
    except Exception as e:  # any failure to load is the answer, not a crash
        protocol.send(sock, {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return 1
    entry = manager.registry.entry(setup["plugin"]["id"])
    protocol.send(sock, {"ok": True, "version": entry.info.version, "layers": layers,
                         "idle_rss_mb": round(_peak_kb() / 1024, 1)})
    _serve(sock, manager)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
