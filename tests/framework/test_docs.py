"""The README and docs/ hold together (issue 25.5): every relative link in README.md
and docs/*.md leads to a file that exists (and to a heading that exists, when it names
one), the README stays short, and its two commands are the ones that work: the
second is what `.ci/run` runs, the first installs and starts the example fleet."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # not inside code
    return [u for u in LINK.findall(text) if not re.match(r"[a-z]+:", u)]


def test_every_relative_link_resolves() -> None:
    broken = []
    checked = 0
    for doc in DOCS:
        for url in links(doc):
            target, _, anchor = url.partition("#")
            dest = (doc.parent / target).resolve() if target else doc
            checked += 1
            if not dest.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {url} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{doc.relative_to(ROOT)}: {url} (no such heading)")
    assert broken == []
    assert checked > 30  # the README's table of docs, the docs' own links


def test_the_readme_links_every_doc_and_its_screenshots() -> None:
    readme = links(ROOT / "README.md")
    for doc in DOCS[1:]:
        assert f"docs/{doc.name}" in readme, doc.name
    images = [u for u in readme if u.endswith(".png")]
    assert images and all((ROOT / u).stat().st_size > 10_000 for u in images), images


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if not line.startswith("#")]


def test_the_readme_s_two_commands_are_the_ones_ci_and_the_example_use() -> None:
    run, test = readme_commands()
    install = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]'"
    assert test == f"{install} && .venv/bin/python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(line.startswith(f"{install} ||") for line in ci), "the install of .ci/run"
    assert ".venv/bin/python -m pytest" in ci, "the test command of .ci/run"
    assert run == ("python3 -m venv .venv && .venv/bin/pip install -q -e . && "
                   "cp -n examples/fleet.yaml fleet.yaml && .venv/bin/ksa run --fleet fleet.yaml")
    assert (ROOT / "examples" / "fleet.yaml").is_file()
