"""compose.yaml cannot run here (no Docker engine): check what can be checked statically."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent.parent


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_images_pinned_health_checked_secrets_by_reference() -> None:
    services = _compose()["services"]
    assert {"broker", "postgres", "worker", "beat", "flower", "web", "example-redis",
            "example-mysql", "example-kafka"} <= set(services)
    for name, svc in services.items():
        image = svc["image"]
        assert re.match(r"^[\w./-]+:\d[\w.-]*$", image), f"{name}: image {image} not pinned"
        if name != "migrate":
            assert "healthcheck" in svc, name
        env = svc.get("environment", {})
        for key, value in env.items():
            if "PASSWORD" in key or "SECRET" in key:
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), key
    assert "deploy" not in services["worker"] and "container_name" not in services["worker"]
    web = " ".join(services["web"]["command"])
    assert "--password-ref file:/run/secrets/web_password" in web  # by reference
    assert "--host 0.0.0.0" in web and "--user" in web  # beyond localhost: with a login
    text = (ROOT / "compose.yaml").read_text()
    assert "KSA_DATABASE_URL: " not in text  # built from the secret file at start


def test_compose_fleet_uses_secret_files() -> None:
    from kubestack_ai.scheduler import load_fleet

    fleet = load_fleet(ROOT / "examples" / "fleet.compose.yaml")
    assert {t.target.type for t in fleet.targets} == {"redis", "mysql", "kafka"}
    secrets = set(_compose()["secrets"])
    for t in fleet.targets:
        if t.target.auth and t.target.auth.password:
            ref = t.target.auth.password
            assert ref.startswith("file:/run/secrets/") and ref.rsplit("/", 1)[1] in secrets
