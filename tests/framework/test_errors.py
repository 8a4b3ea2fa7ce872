"""The error tree drawn in plugins/errors.py is the tree of the classes: every
PluginError subclass defined anywhere under kubestack_ai.plugins appears in the drawing,
under its real parent, and the drawing names no class that does not exist."""

from __future__ import annotations

import importlib
import pkgutil
import re

from kubestack_ai import plugins
from kubestack_ai.plugins import errors

LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*)\b")


def drawn_tree(doc: str) -> dict[str, str | None]:
    """name -> parent name (None for the root), from the box drawing in ``doc``."""
    lines = [ln for ln in doc.splitlines() if ln.startswith("    ") and LINE.match(ln[4:])]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for ln in lines:
        m = LINE.match(ln[4:])
        assert m is not None
        depth = len(m.group("indent")) // 4
        name = m.group("name")
        assert name not in parents, f"{name} drawn twice"
        del stack[depth:]
        assert len(stack) == depth, f"{name}: drawn below nothing"
        parents[name] = stack[-1] if stack else None
        stack.append(name)
    return parents


def actual_tree() -> dict[str, str | None]:
    """Every PluginError subclass defined in kubestack_ai.plugins.*, with its parent."""
    found: dict[str, type[BaseException]] = {}
    for mod in pkgutil.walk_packages(plugins.__path__, plugins.__name__ + "."):
        module = importlib.import_module(mod.name)
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, errors.PluginError)
                    and obj.__module__ == module.__name__):
                other = found.setdefault(obj.__name__, obj)
                assert other is obj, f"two error classes named {obj.__name__}"
    tree: dict[str, str | None] = {}
    for name, cls in found.items():
        bases = [b for b in cls.__bases__ if issubclass(b, errors.PluginError)]
        if cls is errors.PluginError:
            tree[name] = None
            continue
        assert len(bases) == 1, f"{name} has {len(bases)} PluginError parents"
        tree[name] = bases[0].__name__
    return tree


def test_drawing_parser_reads_depth_and_parents():
    doc = "\n".join(["x", "", "    Root", "    ├── A                 text",
                     "    │   └── B             text", "    └── C", ""])
    assert drawn_tree(doc) == {"Root": None, "A": "Root", "B": "A", "C": "Root"}


def test_the_drawn_error_tree_is_the_class_tree():
    drawn = drawn_tree(errors.__doc__ or "")
    actual = actual_tree()
    assert drawn == actual
    # the builtins' own errors are part of it
    assert {"PrepareError", "NotPrepared", "ActionError", "RequestFailed"} <= set(actual)


def test_a_code_import_failure_is_not_a_manifest_error():
    assert not issubclass(plugins.PluginLoadError, plugins.ManifestError)
    assert issubclass(plugins.PluginLoadError, plugins.InvalidPluginError)
    assert issubclass(plugins.ManifestError, plugins.InvalidPluginError)
