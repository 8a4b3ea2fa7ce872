"""beat publishes with kombu's ``Producer.batch`` (kombu >= 5.7). On a kombu without it
beat sent nothing and said nothing; it now refuses to start and says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).parent.parent.parent

# kombu 5.6 stands in as the installed kombu minus Producer.batch: the test extra cannot
# install two kombu versions side by side, and that method is the difference beat needs
OLD_KOMBU_BEAT = """
import sys
import kombu.messaging
del kombu.messaging.Producer.batch
from celery.__main__ import main
sys.argv = ["celery", "-A", "kubestack_ai.workers", "--quiet", "beat", "--loglevel", "warning"]
main()
"""


def test_beat_refuses_to_start_on_a_kombu_without_producer_batch(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet)})
    p = subprocess.run([sys.executable, "-c", OLD_KOMBU_BEAT], env=env, cwd=str(ROOT),
                       capture_output=True, text=True, timeout=45)
    assert p.returncode == 1, p.stderr[-2000:]
    import kombu

    assert (f"beat: kombu {kombu.__version__} has no Producer.batch, which beat publishes "
            "with: install kombu>=5.7 (pip install 'kombu>=5.7,<6')") in p.stderr
    assert "Traceback" not in p.stderr
