"""Structured JSON logs with the request id; anything that looks like a secret is redacted."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|authorization|api[_-]?key|session[_-]?token|credential|external[_-]?id|cookie)",
    re.I,
)
SECRET_VALUES = [
    re.compile(r"\bcw_[A-Za-z0-9_\-]{16,}"),                       # our API keys
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
    re.compile(r"\b(ASIA|AKIA)[A-Z0-9]{16}\b"),                    # AWS access key ids
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]+"),
]
REDACTED = "[REDACTED]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for pat in SECRET_VALUES:
            value = pat.sub(REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if _secret_key(str(k)) else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


# Flags about a secret ("external_id_provided": true) say nothing secret; keep them readable.
_FLAG_SUFFIXES = ("_provided", "_present", "_set")


def _secret_key(key: str) -> bool:
    return key != "event" and bool(SECRET_KEYS.search(key)) and not key.endswith(_FLAG_SUFFIXES)


def redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if _secret_key(k) else _scrub(v)) for k, v in event_dict.items()}


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Library loggers (uvicorn, sqlalchemy) go through the same redaction.
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
