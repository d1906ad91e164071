"""Structured logs (structlog): JSON lines in production, readable lines in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from maxloyalty.kit.context import request_id


def _add_request_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = request_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    renderer: Any = (
        # Russian text stays readable in the log, not \u-escaped.
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: send them the same way.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Chatty at INFO: uvicorn's access log (ours replaces it), the embedded server, Alembic.
    for noisy in ("uvicorn.access", "pgserver", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
