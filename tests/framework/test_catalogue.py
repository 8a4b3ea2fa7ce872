"""The builtin catalogue (``plugins/catalogue.py``, what ``ksa plugin list`` prints when
no external plugin is found) is exactly what the loaded builtins declare."""

from __future__ import annotations

import pprint

from kubestack_ai.plugins import PluginManager, builtin_ids
from kubestack_ai.plugins.builtins import BUILTIN_MODULES
from kubestack_ai.plugins.catalogue import BUILTINS


def test_catalogue_equals_what_the_loaded_builtins_declare() -> None:
    m = PluginManager()
    assert m.load_builtins() == []
    declared = {}
    for pid in m.registry.ids():
        e = m.registry.entry(pid)
        declared[pid] = {"info": e.info.model_dump(mode="json"),
                         "middleware_type": e.middleware_type,
                         "categories": list(e.plugin.categories())}
    assert list(BUILTINS) == builtin_ids() == list(declared) == sorted(BUILTIN_MODULES)
    assert BUILTINS == declared, ("a builtin changed: kubestack_ai/plugins/catalogue.py "
                                  "must say what it declares now:\n" + pprint.pformat(declared))
