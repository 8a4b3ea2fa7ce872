"""kafka-diagnostics: brokers, consumer groups (lag, assignment, Burrow status), topics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..base import MiddlewarePlugin, Run
from ..deadline import Deadline
from ..errors import ConfigError, ConnectError
from ..execution import ActionSpec
from ..logcontext import get_logger
from ..models import MiddlewareTarget, PluginConfig, PluginInfo
from . import compat
from .checks.broker import BrokerChecks
from .checks.consumer import ConsumerChecks
from .checks.topic import TopicChecks
from .constants import ACTION_SPECS, DEFAULTS, PLUGIN_ID, TARGET_OPTIONS, VERSION
from .model import Cluster

if TYPE_CHECKING:
    from .wire import Wire

log = get_logger(__name__)

INFO = PluginInfo(
    id=PLUGIN_ID, name="Kafka diagnostics", version=VERSION,
    description="Brokers, ISR and offline partitions; consumer groups' lag, assignment and "
                "Burrow status; topic configuration and leadership.",
    capabilities=("health-check", "metrics", "diagnose", "lag-monitor"),
    author="KubeStack AI",
    actions=("describe_group", "reset_offsets_latest"),
    dangerous_actions=("reset_offsets_latest",),
)


# bases in reverse: categories are listed (and run) broker, consumer, topic
class KafkaPlugin(TopicChecks, ConsumerChecks, BrokerChecks, MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self._wire: Wire | None = None

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "kafka"

    def supported_versions(self) -> list[str]:
        return [">=0.11 (brokers answering ApiVersions)"]

    @classmethod
    def known_thresholds(cls) -> frozenset[str]:
        return frozenset(DEFAULTS)

    def init(self, deadline: Deadline, config: PluginConfig) -> None:
        compat.detect(config.options.get("broker_flavor"), None)  # validates the option
        super().init(deadline, config)

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        if self._wire is not None and self.target == target and self._wire.alive(deadline):
            return  # same target, still answering: reuse the connections
        self.disconnect(deadline)
        from .wire import Wire

        self._wire = Wire.open(
            target, deadline,
            max_in_flight=int(self._threshold(target, "max_in_flight")),
            request_timeout_s=self._threshold(target, "request_timeout_s"))
        self.target = target
        log.debug("%s: connected to %s", PLUGIN_ID, target.name)

    def disconnect(self, deadline: Deadline) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None
            self.target = None

    def stop(self, deadline: Deadline) -> None:
        self.disconnect(deadline)

    def _threshold(self, target: MiddlewareTarget, name: str) -> float:
        """At connect time (no Run yet): target, else plugin config, else DEFAULTS."""
        default = DEFAULTS[name]
        return float(target.thresholds.get(name, self.config.thresholds.get(name, default)))

    def _flavor_option(self, target: MiddlewareTarget | None) -> str | None:
        opt = target.options.get("broker_flavor") if target is not None else None
        return opt or self.config.options.get("broker_flavor")

    # -- the run ---------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        from . import collect

        wire = self._need_wire()
        wire.node_errors.clear()  # brokers given up on in an earlier run get a new chance
        cluster = collect.metadata(wire, run.deadline)
        run.data["cluster"] = cluster
        try:
            run.data["flavor"] = compat.detect(self._flavor_option(run.target), cluster.cluster_id)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        run.metric("broker_flavor", run.data["flavor"])
        # what the chosen categories need after the metadata, in one round trip
        plans, keys = [], []
        if {"topic", "broker"} & set(run.categories) and cluster.topics:
            plans.append(collect.plan_topic_configs(wire, cluster.topics, run.data["flavor"]))
            keys.append("configs")
        if "consumer" in run.categories:
            plans.append(collect.plan_list_groups(wire, cluster))
            keys.append("listed")
            if compat.offset_fetch_lists_partitions(run.data["flavor"]) and cluster.topics:
                plans.append(collect.plan_latest_offsets(wire, cluster, collect.all_partitions(cluster)))
                keys.append("latest")
        for key, (value, errors) in zip(keys, collect.gather(wire, run.deadline, *plans), strict=False):
            run.data[key] = value
            run.data[f"{key}_errors"] = errors
        if "config_errors" not in run.data and "configs_errors" in run.data:
            run.data["config_errors"] = dict(list(sorted(run.data["configs_errors"].items()))[:20])

    def _cluster(self, run: Run) -> Cluster:
        cluster = run.data.get("cluster")
        if cluster is None:
            raise ConnectError("cluster metadata could not be read (see _prepare)")
        return cluster  # type: ignore[no-any-return]

    def _need_wire(self) -> Wire:
        if self._wire is None:
            raise ConfigError(f"{PLUGIN_ID}: not connected")
        return self._wire

    # -- actions ---------------------------------------------------------------------

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        return TARGET_OPTIONS

    def action_specs(self) -> Mapping[str, ActionSpec]:
        return {name: ActionSpec(name=name, dry_run=True, **spec)
                for name, spec in ACTION_SPECS.items()}

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        from . import actions, collect

        wire = self._need_wire()
        wire.node_errors.clear()
        cluster = collect.metadata(wire, deadline)
        flavor = compat.detect(self._flavor_option(self.target), cluster.cluster_id)
        result = actions.run_action(action, wire, cluster, flavor, params, deadline)
        log.info("%s on %s: %s done", PLUGIN_ID, self.target.name if self.target else "?", action)
        return result
