"""Structured logging (structlog), with national identity numbers redacted from every line.

A fødselsnummer/D-nummer is 11 digits, often written as birth date and personal number apart
("150765 00565", also with a no-break space, a dot or a hyphen). Rather than trust every call
site, the last processor before rendering replaces any such run in any logged string with a
marker, so an identity number that slips into an exception text or a file name still never
reaches a log. ``MessageError`` texts (what a sender reads in OT) pass the same ``redact``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Eleven digits, or six and five with one separator between (space, no-break or thin space,
# dot, hyphen): never next to another digit, so longer numbers are left alone.
_NATIONAL_ID = re.compile(r"(?<![\d])\d{6}[ \u00a0\u202f.\-]?\d{5}(?![\d])")
REDACTED = "***********"


def redact(text: str) -> str:
    """Replace every possible national identity number in ``text`` (11 digits, or 6 + 5 with
    one separator)."""
    return _NATIONAL_ID.sub(REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) == 11:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def redact_national_ids(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact identity numbers in every value of the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Configure structlog for the process: JSON lines on stderr (or a console renderer)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_national_ids,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger bound with the component name."""
    return structlog.get_logger(component=name)
