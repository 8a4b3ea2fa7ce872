"""A user's own folders named like ours (``plugins/``, ``storage/``, ``workers/``) in the
current directory never shadow the framework: everything lives under ``kubestack_ai``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_user_folders_named_like_ours_do_not_shadow_the_framework(tmp_path: Path) -> None:
    for name in ("plugins/p", "storage", "workers", "scheduler", "ksa"):
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "plugins" / "p" / "plugin.yaml").write_text("id: p\n")
    code = ("from kubestack_ai import workers; from kubestack_ai.plugins import MiddlewarePlugin; "
            "print(workers.app.main, MiddlewarePlugin.__module__)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={"KSA_HOME": str(tmp_path / "home"),
                                                   "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-1] == "kubestack_ai.plugins.base"
    listing = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "plugin", "list"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={"KSA_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"})
    assert listing.returncode == 0, listing.stderr
    assert "redis-diagnostics" in listing.stdout
