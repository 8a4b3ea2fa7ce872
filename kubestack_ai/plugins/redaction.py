"""One redaction, for everything shown: task arguments (the reprs Celery logs and sends to
Flower), log lines, the audit log and pages.

A value is hidden (:data:`REDACTED`) when its key is secret-looking
(:func:`plugins.secrets.is_secret_field`, the one definition), and so are the values set
on a secret-looking setting (``{"name": "requirepass", "value": ...}``: ``value``,
``old``, ``new``). A secret reference (``env:NAME``, ``file:/path``), ``None`` and ``""``
are shown as they are: they hold no secret. Lists under a secret key are hidden item by
item (a list of references stays readable).

:func:`redact_value` walks data; :func:`redact_text` does the same in text that holds
JSON or Python reprs, nested ones too (a message body's repr inside a log line, a
``kwargsrepr`` inside a repr of headers); :func:`install_log_redaction` applies it to
every log record of the process (the workers, beat and ``ksa`` install it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from .secrets import SECRET_FIELD, SECRET_REF, is_secret_field

REDACTED = "<redacted>"
SETTING_VALUES = frozenset({"value", "old", "new"})
"""The keys that carry a setting's value beside its ``name`` (``config_set`` params and results)."""


def _is_secret_setting(value: Mapping[Any, Any]) -> bool:
    return is_secret_field(value.get("name")) and not SETTING_VALUES.isdisjoint(value)


def redact_value(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, tuples) with its secrets hidden."""
    if isinstance(value, Mapping):
        setting = _is_secret_setting(value)
        return {k: (_hide(v) if is_secret_field(k) or (setting and k in SETTING_VALUES)
                    else redact_value(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v) for v in value)
    return value


def _hide(value: Any) -> Any:
    if value is None or value == "" or (isinstance(value, str) and SECRET_REF.match(value)):
        return value
    if isinstance(value, list):
        return [_hide(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_hide(v) for v in value)
    return REDACTED


# a quoted key, then ':'; quotes may be escaped (a repr inside a repr: \' or \\")
_KEY = re.compile(r"""(?P<q>\\*["'])(?P<key>[^"'\\\s][^"'\\]{0,99})(?P=q)\s*:\s*""")
_QUOTE = re.compile(r"""\\*["']""")
_NUMBER = re.compile(r"-?\d[\d.eE+-]*")
_FLAT_DICT = re.compile(r"\{[^{}]{0,2000}\}")
_ANYWHERE = re.compile(SECRET_FIELD.pattern.replace("$", ""))
"""The secret-looking names, unanchored, searched in the lowercased text: a text without
any holds nothing to redact (the fast path of most log lines; re.IGNORECASE made this
search 10x slower)."""
_NAME = re.compile(r"""(?P<q>\\*["'])name(?P=q)\s*:\s*(?P<vq>\\*["'])(?P<v>[^"'\\]{1,100})(?P=vq)""")


def redact_text(text: str) -> str:
    """``text`` with the secrets of the JSON or Python reprs it holds hidden."""
    if ":" not in text or _ANYWHERE.search(text.lower()) is None:
        return text
    text = _FLAT_DICT.sub(_setting_dict, text) if "name" in text else text
    out: list[str] = []
    pos = 0
    while (m := _KEY.search(text, pos)) is not None:
        out.append(text[pos:m.end()])
        pos = m.end()
        if is_secret_field(m.group("key")):
            hidden, pos = _hide_text(text, pos)
            out.append(hidden)
    out.append(text[pos:])
    return "".join(out)


def _setting_dict(m: re.Match[str]) -> str:
    """``{'name': 'requirepass', 'value': 'x'}``: the setting's values hidden."""
    flat = m.group(0)
    name = _NAME.search(flat)
    if name is None or not is_secret_field(name.group("v")):
        return flat
    out: list[str] = []
    pos = 0
    for k in _KEY.finditer(flat):
        if k.start() < pos or k.group("key") not in SETTING_VALUES:
            continue
        out.append(flat[pos:k.end()])
        hidden, pos = _hide_text(flat, k.end())
        out.append(hidden)
    out.append(flat[pos:])
    return "".join(out)


def _hide_text(text: str, pos: int) -> tuple[str, int]:
    """The value that starts at ``pos`` hidden, and where it ends."""
    q = _QUOTE.match(text, pos)
    if q is not None:
        end = _closing(text, q.end(), q.group(0))
        if end < 0:  # cut off (a truncated repr): hide the rest
            return q.group(0) + REDACTED, len(text)
        inner = text[q.end():end]
        shown = inner if SECRET_REF.match(inner) or inner == "" else REDACTED
        return q.group(0) + shown + q.group(0), end + len(q.group(0))
    if text.startswith("[", pos):
        end = text.find("]", pos)
        end = len(text) if end < 0 else end
        items: list[str] = []
        i = pos
        while (q := _QUOTE.search(text, i, end)) is not None:
            close = _closing(text, q.end(), q.group(0))
            if close < 0 or close >= end:
                break
            inner = text[q.end():close]
            shown = inner if SECRET_REF.match(inner) or inner == "" else REDACTED
            items.append(text[i:q.end()] + shown + q.group(0))
            i = close + len(q.group(0))
        items.append(_NUMBER.sub(REDACTED, text[i:end]))
        return "".join(items), end
    n = _NUMBER.match(text, pos)
    if n is not None:
        return REDACTED, n.end()
    return "", pos


def _closing(text: str, start: int, quote: str) -> int:
    """Index of the quote that closes a string opened by ``quote`` before ``start``."""
    i = start
    while (i := text.find(quote, i)) >= 0:
        # a bare quote preceded by a backslash is escaped, not closing
        backslashes = len(text[start:i]) - len(text[start:i].rstrip("\\"))
        if len(quote) > 1 or backslashes % 2 == 0:
            return i
        i += 1
    return -1


def redact_record(record: logging.LogRecord) -> None:
    """Hide the secrets of a record's message and traceback text (in place)."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (a record that cannot format is left to the handler)
        return
    redacted = redact_text(message)
    if redacted != message:
        record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        # formatters use a record's exc_text when it is set
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))


def install_log_redaction() -> None:
    """Every log record of this process is redacted as it is made (idempotent; kept by
    forked children). A record factory rather than a filter: a logger's filter misses
    its children's records, and a handler's misses handlers added later."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "ksa_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.ksa_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
