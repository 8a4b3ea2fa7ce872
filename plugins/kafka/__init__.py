"""kafka-diagnostics: the builtin Kafka plugin (kafka-python is imported on connect)."""

from __future__ import annotations

from ..loader import register_builtin
from .plugin import KafkaPlugin

register_builtin("kafka-diagnostics", KafkaPlugin)

__all__ = ["KafkaPlugin"]
