"""INFO's reply as a dict: the same dict redis-py's ``parse_info`` builds, in less time.

Every diagnosis parses one INFO all (~200 fields, ~15 of them ``key=value`` lists such as
``cmdstat_get`` and ``db0``). redis-py's parser converts each value through a nested
function, an exception for every value that is not a number and a split per list; this
one takes the common cases first (a plain integer, a ``key=value`` list of integers) and
gives the same result for every line (tests/redis/test_infoparse.py holds the two equal
on real servers' replies and on odd lines). It also lists the fields parsed into dicts
as it goes, which the checks otherwise find by scanning the whole dict again.

The Redis clients the plugin makes use it for every INFO (``Connector``'s clients).
"""

from __future__ import annotations

from typing import Any


class Info(dict[str, Any]):
    """A parsed INFO reply (a plain dict to every reader) that also knows its dict
    fields: ``db0``, ``cmdstat_get``, ``errorstat_ERR``, ``slave0``..., in INFO's order."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, dict[str, Any]]] = []

    def __reduce__(self) -> Any:  # pickles (and copies) as the plain dict it stands for
        return dict, (dict(self),)


def _scalar(value: str) -> Any:
    # redis-py tries float() when the value has a "." and int() otherwise, and keeps the
    # string when that raises. The exception is the slow part, and most strings in INFO
    # cannot be numbers at a glance: those are kept without trying
    if not value:
        return value
    last = value[-1]
    if not (last.isdigit() or last == "." or last.isspace()):
        return value  # no number ends so: a letter ("master", "1.50M"), "%", ")"...
    if "." in value:
        if value.count(".") > 1:
            return value  # float() takes one point at most ("7.0.15", an IP address)
        try:
            return float(value)
        except ValueError:
            return value
    if value.lower() != value.upper():
        return value  # int() takes no letter (a run id, a build id)
    try:
        return int(value)
    except ValueError:
        return value


def _value(value: str) -> Any:
    """redis-py's ``get_value``."""
    if "=" in value:
        return _pairs(value)
    if "," in value:
        return [_value(v) for v in value.split(",") if v]
    return _scalar(value)


def _pairs(value: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in value.split(","):
        if not item:
            continue
        k, eq, v = item.rpartition("=")
        if not eq:
            out[v] = True
        elif v.isdigit() and v.isascii():
            out[k] = int(v)
        else:
            out[k] = _value(v)
    return out


def parse_info(response: str | bytes, **_options: Any) -> Info:
    """INFO's text -> :class:`Info` (redis-py's response callback signature)."""
    if isinstance(response, bytes):
        response = response.decode("utf-8", errors="replace")
    info = Info()
    fields = info.fields
    for line in response.splitlines():
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition(":")
        if not sep:
            info.setdefault("__raw__", []).append(line)
            continue
        if value.isdigit() and value.isascii():
            info[key] = int(value)
            continue
        if key == "cmdstat_host":  # the one key with a ":" of its own
            key, _, value = line.rpartition(":")
        if key == "module":  # one line per module: redis-py lists them under "modules"
            info.setdefault("modules", []).append(_value(value))
            continue
        if "=" in value:
            pairs = info[key] = _pairs(value)
            fields.append((key, pairs))
        else:
            info[key] = _value(value)
    return info


def dict_fields(info: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The fields of an INFO reply parsed into dicts, in INFO's order (listed by the
    parser for an :class:`Info`, found by a scan of any other dict)."""
    if isinstance(info, Info):
        return info.fields
    return [(name, value) for name, value in info.items() if isinstance(value, dict)]
