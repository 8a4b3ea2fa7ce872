"""An entry-point plugin's wheel in the signed index: published without importing it,
installed as its package folder beside other versions, diagnosing through ``ksa diagnose``
(in a plugin host), refused when tampered, its pinned Requires-Dist checked against the
index's advisories."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.external.util import CODE, REPO

from .conftest import Env

PKG = "fxw_pkg"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(out: Path, pid: str, version: str, *, requires_dist: tuple[str, ...] = (),
                top: str = "", entry: str = "plugin:FxPlugin", manifest_extra: str = "",
                extra: dict[str, bytes] | None = None) -> Path:
    """A wheel written with zipfile: the package (plugin.py, plugin.yaml, __init__.py) and
    its dist-info (METADATA, WHEEL, entry_points.txt, RECORD)."""
    dist = f"fxw_dist-{version}.dist-info"
    code = CODE.format(pid=pid, version=version, api="1.0", mtype=f"fx-{pid}",
                       init=" " * 8 + "pass", top=top, imports="")
    files: dict[str, bytes] = {
        f"{PKG}/__init__.py": b"",
        f"{PKG}/plugin.py": code.encode(),
        f"{PKG}/plugin.yaml": (f"id: {pid}\nname: Fixture {pid}\nversion: {version}\n"
                               f"type: middleware\napi_version: \"1.0\"\nentry: {entry}\n"
                               f"{manifest_extra}").encode(),
        f"{dist}/METADATA": ("Metadata-Version: 2.1\nName: fxw-dist\nVersion: " + version
                             + "\n" + "".join(f"Requires-Dist: {r}\n" for r in requires_dist)
                             + "\nA fixture plugin.\n").encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         b"Tag: py3-none-any\n",
        f"{dist}/entry_points.txt": f"[kubestack_ai.plugins]\n{pid} = {PKG}.plugin:FxPlugin\n"
                                    .encode(),
        **(extra or {})}
    record = "".join(f"{n},sha256={b64(b)},{len(b)}\n" for n, b in files.items())
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"fxw_dist-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in files.items():
            zf.writestr(n, b)
    return path


def add(env: Env, wheel: Path, *extra: str) -> tuple[int, str, str]:
    return env.ksa("index", "add", str(wheel), "--index", str(env.index), "--key",
                   str(env.key), *extra)


def test_a_wheel_is_published_installed_side_by_side_and_diagnoses_isolated(env: Env) -> None:
    marker = env.index.parent / "imported"
    # code at the module's top: had publish or install imported it, the marker would exist
    top = f"open({str(marker)!r}, 'w').close()"
    code, out, err = add(env, build_wheel(env.src, "fxw", "1.0.0", top=top))
    assert code == 0, out + err
    assert "published fxw 1.0.0 (wheel, entry point fxw_pkg.plugin:FxPlugin" in out
    assert "scan: write       plugin.py:10  opens a path outside its folder for writing (open)" in out
    entry = json.loads((env.index / "index.json").read_text())["plugins"]["fxw"]["versions"][
        "1.0.0"]
    assert entry["format"] == "wheel"
    assert entry["artifact"] == "artifacts/fxw_dist-1.0.0-py3-none-any.whl"
    assert sorted(entry["files"]) == ["__init__.py", "plugin.py", "plugin.yaml"]
    code, out, err = env.install("fxw")
    assert code == 0, out + err
    d1 = env.home / "plugins" / "fxw" / "1.0.0"
    assert f"installed fxw 1.0.0 in {d1}" in out
    assert sorted(p.name for p in d1.iterdir()) == ["__init__.py", "plugin.py", "plugin.yaml"]
    assert not marker.exists()  # never imported at publish or install

    assert add(env, build_wheel(env.src / "2", "fxw", "1.1.0"))[0] == 0
    code, out, err = env.ksa("plugin", "outdated", "--index", env.url)
    assert out.splitlines()[1].split()[:3] == ["fxw", "1.0.0", "1.1.0"], out + err
    assert env.ksa("plugin", "update", "fxw", "--index", env.url, "--yes")[0] == 0
    assert (env.home / "plugins" / ".current" / "fxw").readlink().as_posix() == "../fxw/1.1.0"
    assert env.ksa("plugin", "verify", "fxw", "--index", env.url)[1] == (
        "ok: fxw 1.1.0 (3 files match the index)\n")

    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "diagnose", "fx-fxw",
                        "127.0.0.1:1", "--json"], capture_output=True, text=True, cwd=REPO,
                       timeout=60, env={**{k: v for k, v in os.environ.items()
                                           if k not in ("KSA_PLUGIN_PATH", "PYTHONPATH")},
                                        "KSA_HOME": str(env.home)})
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert (r["plugin_id"], r["plugin_version"], r["outcome"]) == ("fxw", "1.1.0", "completed")
    assert r["metrics"]["version"] == "1.1.0"
    # it ran in a plugin host, confined
    assert r["resources"]["isolation"] == "cgroup,filesystem,network,rlimits,seccomp,user"

    code, out, err = env.ksa("plugin", "rollback", "fxw")
    assert out.splitlines()[0] == "fxw: rolled back 1.1.0 -> 1.0.0", out + err


def test_a_tampered_wheel_is_refused(env: Env) -> None:
    wheel = build_wheel(env.src, "fxw", "1.0.0")
    assert add(env, wheel)[0] == 0
    art = env.index / "artifacts" / wheel.name
    data = bytearray(art.read_bytes())
    at = data.index(b"diagnoses nothing real")
    data[at:at + 9] = b"DIAGNOSES"
    art.write_bytes(bytes(data))
    code, out, err = env.install("fxw")
    assert code == 1
    assert "fxw 1.0.0: artifact artifacts/fxw_dist-1.0.0-py3-none-any.whl has SHA-256" in err
    assert "tampered or corrupted, refused (nothing installed)" in err
    assert not (env.home / "plugins" / "fxw" / "1.0.0").exists()


def test_a_wheel_whose_files_differ_from_its_record_is_not_published(env: Env) -> None:
    wheel = build_wheel(env.src, "fxw", "1.0.0")
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("fxw_pkg/extra.py", b"x = 1\n")
    code, out, err = add(env, wheel)
    assert code == 1
    assert "fxw_pkg/extra.py does not match the wheel's RECORD (missing or another SHA-256): " \
           "refused (not published)" in err


def test_a_wheel_that_breaks_a_rule_is_not_published(env: Env) -> None:
    code, out, err = add(env, build_wheel(env.src, "fxw", "1.0.0", entry="other:FxPlugin"))
    assert code == 1
    assert ("fxw_pkg/plugin.yaml says entry 'other:FxPlugin', the entry point "
            "'fxw_pkg.plugin:FxPlugin' relative to its package is 'plugin:FxPlugin' "
            "(set entry: plugin:FxPlugin): refused") in err
    code, out, err = add(env, build_wheel(env.src / "s", "fxw", "1.0.0",
                                          extra={"setup_hook.py": b"import os\n"}))
    assert code == 1
    assert "the wheel holds setup_hook.py beside the package 'fxw_pkg'" in err
    code, out, err = add(env, build_wheel(env.src / "c", "fxw", "1.0.0", extra={
        "fxw_pkg/__pycache__/plugin.cpython-311.pyc": b"\x00"}))
    assert code == 1
    assert "the wheel's package holds __pycache__/plugin.cpython-311.pyc: byte-code and " \
           "hidden files are not published" in err
    assert not (env.index / "index.json").exists()  # nothing of these was published


def test_a_vulnerable_requires_dist_is_reported_in_the_scan(env: Env) -> None:
    env.index.mkdir(parents=True, exist_ok=True)
    (env.index / "advisories.json").write_text(json.dumps({"leakylib": [
        {"id": "CVE-2026-0001", "affected": "<2.0", "summary": "leaks passwords"}]}))
    wheel = build_wheel(env.src, "fxw", "1.0.0",
                        requires_dist=("leakylib==1.4", "safe>=1", "leakylib2 (==1.0)"))
    code, out, err = add(env, wheel)
    assert code == 0, out + err
    line = ("scan: vulnerable  fxw_dist-1.0.0.dist-info/METADATA:4  leakylib 1.4: "
            "CVE-2026-0001 leaks passwords")
    assert line in out.splitlines()
    code, out, err = env.install("fxw")
    assert code == 0, out + err
    assert "  " + line in out.splitlines()  # recomputed from the wheel at install


def test_a_wheel_is_searchable_by_what_its_publisher_declares_and_its_requires_checked(
        env: Env) -> None:
    code, out, err = add(env, build_wheel(env.src, "fxw", "1.0.0"), "--middleware-type",
                         "fx-fxw", "--category", "basic")
    assert code == 0, out + err
    code, out, err = env.ksa("plugin", "search", "--index", env.url)
    assert out.splitlines()[1] == "fxw  1.0.0   -       fx-fxw: basic", out + err
    wheel = build_wheel(env.src / "r", "fxw", "1.1.0",
                        manifest_extra="requires:\n  - redis-diagnostics >= 99\n")
    code, out, err = add(env, wheel)
    assert code == 1
    assert f"error: {wheel} (fxw_pkg/): requires[0]: requires redis-diagnostics >= 99 but " \
           "redis-diagnostics" in err
    assert f"{wheel}: 1 problem(s) in its fxw_pkg/ manifest: not published" in err
    code, out, err = env.ksa("index", "add", str(env.src / "r"), "--index", str(env.index),
                             "--key", str(env.key), "--category", "basic")
    assert (code, err.strip()) == (2, "ksa: error: --middleware-type and --category are for "
                                      "a wheel; a plugin folder's are read from its code at "
                                      "validation")


def test_a_wheel_version_runs_as_a_canary_and_is_promoted(env: Env) -> None:
    assert add(env, build_wheel(env.src, "fxw", "1.0.0"))[0] == 0
    assert add(env, build_wheel(env.src / "2", "fxw", "2.0.0"))[0] == 0
    assert env.install("fxw==1.0.0")[0] == 0
    code, out, err = env.ksa("plugin", "canary", "fxw", "--version", "2.0.0", "--share", "10",
                             "--index", env.url, "--yes")
    assert code == 0, out + err
    assert (env.home / "plugins" / "fxw" / "2.0.0" / "plugin.yaml").is_file()
    cur = env.home / "plugins" / ".current" / "fxw"
    assert cur.readlink().as_posix() == "../fxw/1.0.0"  # beside, not current
    code, out, err = env.ksa("plugin", "promote", "fxw")
    assert out.startswith("fxw: 2.0.0 promoted, current on every target (was 1.0.0)"), out + err
    assert cur.readlink().as_posix() == "../fxw/2.0.0"
