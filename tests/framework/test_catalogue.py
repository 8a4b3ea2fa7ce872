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


def test_builtins_import_no_ssl_until_a_tls_context_is_made() -> None:
    """Loading the builtins (``ksa plugin list`` with an external plugin, a worker's
    start) imports ``ssl`` only when a TLS context is made (issue 15: start-up)."""
    import subprocess
    import sys

    code = ("import sys; from kubestack_ai.plugins import PluginManager; m = PluginManager(); "
            "m.load_builtins(); print('ssl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"
