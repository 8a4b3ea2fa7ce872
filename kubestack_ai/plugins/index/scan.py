"""What a plugin's code may do, found by reading it (``ast``; nothing is imported or run).

Rules (each finding names the rule, the file and the line):

    process      subprocess, os.system/popen/exec*/spawn*/fork, pty.spawn
    native       ctypes, cffi
    dynamic      eval, exec, compile, __import__, importlib
    write        a write (open for writing, Path.write_*, remove, rename, mkdir, shutil)
                 whose path is not a relative literal inside the plugin's folder
    network      socket, http.client, urllib.request, requests, httpx, aiohttp use
                 (a diagnostics plugin talks to its target; anything else shows here)
    environment  os.environ, os.getenv, os.putenv
    vulnerable   a pinned dependency (requirements.txt, or a wheel's ``Requires-Dist:
                 name==version``) named in the index's advisories

A file that does not parse is a finding too (``syntax``): what cannot be read cannot be
vouched for. The report is stored in the index at publish time and recomputed at
install; any difference refuses the install.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from .pack import plugin_files

PROCESS = ("subprocess", "os.system", "os.popen", "os.exec", "os.spawn", "os.fork",
           "os.posix_spawn", "pty.spawn", "commands.")
NATIVE = ("ctypes", "cffi")
DYNAMIC = ("eval", "exec", "compile", "__import__", "importlib")
NETWORK = ("socket", "http.client", "urllib.request", "requests", "httpx", "aiohttp",
           "ftplib", "smtplib", "telnetlib")
ENVIRON = ("os.environ", "os.getenv", "os.putenv", "os.unsetenv")
WRITE_CALLS = ("os.remove", "os.unlink", "os.rmdir", "os.rename", "os.replace", "os.mkdir",
               "os.makedirs", "os.chmod", "os.truncate", "shutil.copy", "shutil.move",
               "shutil.rmtree", "shutil.copyfile", "shutil.copytree")
WRITE_METHODS = ("write_text", "write_bytes", "unlink", "rmdir", "mkdir", "touch", "rename",
                 "replace")


def _match(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p if p.endswith((".", "_")) else p + ".")
               or (p.endswith(("exec", "spawn")) and name.startswith(p)) for p in prefixes)


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.aliases: dict[str, str] = {}
        self.found: list[dict[str, Any]] = []

    def add(self, rule: str, node: ast.AST, detail: str) -> None:
        self.found.append({"rule": rule, "file": self.file, "line": getattr(node, "lineno", 0),
                           "detail": detail})

    def _imported(self, node: ast.AST, module: str) -> None:
        for rule, prefixes in (("process", PROCESS), ("native", NATIVE),
                               ("dynamic", DYNAMIC), ("network", NETWORK)):
            if _match(module, prefixes):
                self.add(rule, node, f"imports {module}")
                return

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[(a.asname or a.name).split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0])
            self._imported(node, a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if node.level:
            return  # the plugin's own modules
        for a in node.names:
            full = f"{mod}.{a.name}"
            self.aliases[a.asname or a.name] = full
            self._imported(node, full)

    def qual(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qual(node.value)
            return f"{base}.{node.attr}" if base else ""
        return ""

    def visit_Attribute(self, node: ast.Attribute) -> None:
        q = self.qual(node)
        if q in ("os.environ",):
            self.add("environment", node, "reads os.environ")
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        q = self.qual(node.func)
        if q:
            if _match(q, PROCESS):
                self.add("process", node, f"calls {q}()")
            elif _match(q, NATIVE):
                self.add("native", node, f"calls {q}()")
            elif q in ("eval", "exec", "compile", "__import__") or q.startswith("importlib."):
                self.add("dynamic", node, f"calls {q}()")
            elif _match(q, NETWORK):
                self.add("network", node, f"calls {q}()")
            elif q in ENVIRON[1:]:
                self.add("environment", node, f"calls {q}()")
            elif q == "open" or q == "io.open" or q.endswith(".open"):
                self._open(node, q)
            elif q in WRITE_CALLS or any(q.startswith(w) for w in WRITE_CALLS if
                                          w.startswith("shutil")):
                if not node.args or not _inside(node.args[0]):
                    self.add("write", node, f"calls {q}() on a path outside its folder")
        if isinstance(node.func, ast.Attribute) and node.func.attr in WRITE_METHODS \
                and not q.startswith(("os.", "shutil.")) and not _inside(node.func.value):
            self.add("write", node, f"calls .{node.func.attr}() on a path outside its folder")
        self.generic_visit(node)

    def _open(self, node: ast.Call, q: str) -> None:
        mode: ast.AST | None = node.args[1] if len(node.args) > 1 else None
        for kw in node.keywords:
            if kw.arg == "mode":
                mode = kw.value
        if q not in ("open", "io.open", "os.open") and not q.startswith(("pathlib.", "Path")):
            # some_path.open(mode): the path is the receiver
            target: ast.AST | None = node.func.value if isinstance(node.func, ast.Attribute) \
                else None
            mode = node.args[0] if node.args else mode
        else:
            target = node.args[0] if node.args else None
        if mode is None or (isinstance(mode, ast.Constant) and isinstance(mode.value, str)
                            and not set(mode.value) & set("wax+")):
            return
        if target is None or not _inside(target):
            self.add("write", node, f"opens a path outside its folder for writing ({q})")


def _inside(node: ast.AST) -> bool:
    """A relative string literal that stays inside the folder."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.func, (ast.Name,
                                                                           ast.Attribute)):
        return _inside(node.args[0])  # Path("x")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        p = Path(node.value)
        return not p.is_absolute() and ".." not in p.parts
    return False


def scan_source(text: str, file: str) -> list[dict[str, Any]]:
    try:
        tree = ast.parse(text, filename=file)
    except SyntaxError as e:
        return [{"rule": "syntax", "file": file, "line": e.lineno or 0,
                 "detail": f"does not parse: {e.msg}"}]
    s = _Scanner(file)
    s.visit(tree)
    return s.found


def _advised(name: str, ver: str, file: str, line: int,
             advisories: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings for one pinned dependency ``name==ver`` named in the advisories."""
    out = []
    for adv in advisories.get(name.lower(), ()):
        try:
            hit = Version(ver) in SpecifierSet(adv["affected"])
        except (InvalidVersion, InvalidSpecifier, KeyError, TypeError):
            continue
        if hit:
            out.append({"rule": "vulnerable", "file": file, "line": line,
                        "detail": f"{name} {ver}: {adv.get('id', '?')} "
                                  f"{adv.get('summary', '')}".rstrip()})
    return out


def scan_requirements(text: str, file: str, advisories: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#")[0].strip()
        if "==" not in line:
            continue
        name, _, ver = line.partition("==")
        out += _advised(name.strip(), ver.strip(), file, n, advisories)
    return out


def scan_requires_dist(metadata: str, file: str, advisories: dict[str, Any]
                       ) -> list[dict[str, Any]]:
    """A wheel's METADATA: each ``Requires-Dist`` pinned to one version (``==``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out: list[dict[str, Any]] = []
    if not advisories:
        return out
    for n, line in enumerate(metadata.splitlines(), 1):
        if line.startswith(("\n", " ")) or not line:
            if not line:
                break  # the headers end at the first blank line; the body follows
            continue
        key, _, value = line.partition(":")
        if key.strip().lower() != "requires-dist":
            continue
        try:
            req = Requirement(value.strip())
        except InvalidRequirement:
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if len(pins) == 1 and "*" not in pins[0]:
            out += _advised(req.name, pins[0], file, n, advisories)
    return out


def scan_files(files: dict[str, bytes], advisories: dict[str, Any] | None = None
               ) -> list[dict[str, Any]]:
    """Every finding in a plugin's files (relative path -> bytes), sorted by file, line
    and rule."""
    found: list[dict[str, Any]] = []
    for rel in sorted(files):
        if rel.endswith(".py"):
            found += scan_source(files[rel].decode("utf-8", errors="replace"), rel)
        elif rel.rsplit("/", 1)[-1] == "requirements.txt" and advisories:
            found += scan_requirements(files[rel].decode("utf-8", errors="replace"), rel,
                                       advisories)
    return sorted(found, key=lambda f: (f["file"], f["line"], f["rule"], f["detail"]))


def scan_folder(folder: Path, advisories: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return scan_files({rel: p.read_bytes() for rel, p in plugin_files(folder)}, advisories)


def render(findings: list[dict[str, Any]]) -> list[str]:
    if not findings:
        return ["scan: nothing found (no process, native, dynamic code, writes outside its "
                "folder, network, environment)"]
    return [f"scan: {f['rule']:<11} {f['file']}:{f['line']}  {f['detail']}" for f in findings]
