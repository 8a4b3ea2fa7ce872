"""The README and docs/ hold together (issue 25.5): every relative link in README.md
and docs/*.md (and the plugins' and bench's READMEs) leads to a file that exists, and
to a heading that exists when it names one; the README stays short; its two commands
are the ones that work: the second is what `.ci/run` runs, the first installs and
starts the example fleet; the plugin guide is written against the plugin API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OTHERS = [*sorted(ROOT.glob("kubestack_ai/plugins/*/README.md")), ROOT / "bench" / "README.md"]
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
    for doc in [*DOCS, *OTHERS]:
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


def plugin_guide() -> str:
    return (ROOT / "docs" / "plugins.md").read_text().split("## Write your own plugin", 1)[1]


def test_the_plugin_guide_is_written_against_the_plugin_api() -> None:
    """The guide's code (its Python blocks, one class) imports what kubestack_ai.plugins
    exports and overrides MiddlewarePlugin's methods with their own parameters; its
    manifest is one the framework accepts."""
    import inspect

    import kubestack_ai.plugins as api
    from kubestack_ai.plugins.manifest import parse_yaml, validate_manifest

    guide = plugin_guide()
    code = "\n".join(re.findall(r"```python\n(.*?)```", guide, re.S))
    tree = ast.parse(code)  # the blocks are one module: the second continues the class
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "kubestack_ai.plugins" for a in n.names]
    assert "MiddlewarePlugin" in imported
    assert [n for n in imported if not hasattr(api, n)] == []
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    exported = {n for n in used if not inspect.ismodule(getattr(api, n, inspect))}
    assert exported - set(imported) == set(), "used, not imported"
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert [ast.unparse(b) for b in cls.bases] == ["MiddlewarePlugin"]
    overridden = 0
    for fn in cls.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in fn.decorator_list]
        args = [a.arg for a in fn.args.args]
        if any(d.startswith("category(") for d in decorators):
            assert args == ["self", "run"], fn.name
            continue
        base = getattr(api.MiddlewarePlugin, fn.name)
        want = list(inspect.signature(base).parameters)
        assert args == (want if "classmethod" not in decorators else ["cls", *want]), fn.name
        overridden += 1
    assert overridden >= 6  # info, middleware_type, connect, disconnect, options, actions
    [manifest] = re.findall(r"```yaml\n(.*?)```", guide, re.S)
    m = validate_manifest(parse_yaml(manifest), "docs/plugins.md")
    assert (m.id, m.entry, m.api_version) == ("my-plugin", "plugin:MyPlugin", api.API_VERSION)
