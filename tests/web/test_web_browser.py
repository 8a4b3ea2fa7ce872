"""The fleet page and a target page, checked as a person would: headless Chromium
renders them (driven through chromedriver) over a fleet of three real Redis servers,
one healthy, one evicting at its limit (warning), one refusing writes (critical).
Screenshots are saved as test artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .browser import Browser
from .conftest import Fleet, Web, docs_image, need_bin


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need_bin("chromium", "chromium")
    need_bin("chromedriver", "chromium-driver")
    b = Browser()
    yield b
    b.close()


def _rows(b: Browser) -> dict[str, str]:
    """Target name -> the status shown in its row."""
    out = {}
    for row in b.texts("#targets tbody tr"):
        status, name = row.split()[:2]
        out[name] = status
    return out


def test_fleet_page_shows_the_three_statuses_and_filters(browser: Browser, web: Web,
                                                         fleet: Fleet, artifacts: Path) -> None:
    browser.get(web.url + "/")
    assert _rows(browser) == {"cache-critical": "critical", "cache-warning": "warning",
                              "cache-healthy": "healthy"}
    counts = browser.text("#counts")
    assert "1 critical" in counts and "1 warning" in counts and "1 healthy" in counts
    assert "0 stale" in counts
    assert "3 redis" in browser.text("#types")
    crit_row = browser.text('tr[data-key="redis:cache-critical"]')
    assert "redis.memory.noeviction_near_limit" in crit_row or "redis.memory.usage_high" in crit_row
    assert "completed" in crit_row
    docs_image(browser.screenshot(artifacts / "fleet.png"), "fleet.png")  # the README's

    # the text filter narrows the list to what was typed
    browser.type("#f-q", "warn")
    assert "q=warn" in browser.follow("#f-apply")
    assert _rows(browser) == {"cache-warning": "warning"}
    assert "1 of 1 matching" in browser.text("#shown")
    browser.screenshot(artifacts / "fleet-filtered.png")
    # the status counts are links that filter too
    browser.get(web.url + "/")
    browser.follow('#counts a[data-status="healthy"]')
    assert _rows(browser) == {"cache-healthy": "healthy"}


def test_target_page_shows_the_critical_finding_and_its_history(
        browser: Browser, web: Web, fleet: Fleet, artifacts: Path) -> None:
    browser.get(web.url + "/")
    browser.follow('tr[data-key="redis:cache-critical"] a')
    assert browser.text("#status") == "critical"
    result = fleet.store.target("redis:cache-critical")
    assert result is not None
    critical = [f for f in result.findings if f["severity"] == "critical"]
    assert critical, result.findings
    findings = browser.text("#findings")
    for f in critical:  # what the plugin said, as a person reads it
        assert f["title"] in findings
        assert f["suggestion"] in findings
    assert "noeviction" in findings
    history = browser.text("#finding-history")
    assert "ongoing" in history  # found in both runs
    runs = browser.texts("#runs tbody tr")
    assert len(runs) == 2 and all("completed" in r and "critical" in r for r in runs)
    assert "critical" in browser.text("#timeline")
    assert "No action has been run" in browser.text("body")
    browser.screenshot(artifacts / "target-critical.png")

    browser.get(web.url + "/targets/redis%3Acache-healthy")
    assert browser.text("#status") == "healthy"
    assert "No findings in the latest run" in browser.text("body") or \
        "critical" not in browser.text("#findings")
    browser.screenshot(artifacts / "target-healthy.png")
