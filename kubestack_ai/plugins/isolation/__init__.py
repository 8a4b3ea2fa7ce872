"""Plugin code in a process of its own (issue 21; docs/isolation.md).

    client.py     the worker's side: HostPool, PluginHost (start, warm reuse, replace)
    host.py       the plugin host process (python -m kubestack_ai.plugins.isolation.host)
    confine.py    what the host does to itself: mounts, privileges, rlimits, seccomp
    seccomp.py    the system-call filter (libseccomp through pyseccomp)
    cgroups.py    a cgroup per host (v2, else v1): limits and measurement
    netbroker.py  the host's network: connections opened by the worker, checked
    grants.py     the one target's credentials a run gets
    layers.py     what this machine offers, and why a layer is missing
    policy.py     which plugins are isolated, and where their code is
"""

from .client import HostFailure, HostPool, PluginHost
from .layers import Layer, probe
from .policy import IsolationRefused, PluginRef, describe, isolated, locate, ref_of

__all__ = ["HostFailure", "HostPool", "IsolationRefused", "Layer", "PluginHost", "PluginRef",
           "describe", "isolated", "locate", "probe", "ref_of"]
