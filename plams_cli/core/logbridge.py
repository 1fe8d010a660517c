"""The bridge from stdlib :mod:`logging` to the run's log: what the runners say reaches the logfile.

The runners (the grid's submit / poll / cancel loop above all) log through the stdlib
logger ``plams_cli.runners`` and its children, so they import nothing of the core.
While a run is initialised (``init()`` to ``finish()``), :func:`attach` hangs a
:class:`RunLogHandler` on that logger, which hands each record to
:func:`plams_cli.core.logger.log`: WARNING and above at level 1 (prefixed with the
level's name), INFO at 3, DEBUG at 7 — so grid messages are shown and written where the
run's own lines are.
"""

from __future__ import annotations

import logging

from plams_cli.core.logger import log
from plams_cli.core.logger import threshold as logger_threshold

__all__ = ["RunLogHandler", "attach", "detach", "RUNNERS_LOGGER", "plams_level"]

#: the stdlib logger the runners log through
RUNNERS_LOGGER = "plams_cli.runners"


def plams_level(levelno: int) -> int:
    """The ``log()`` level of a stdlib level: WARNING and above 1, INFO 3, DEBUG (and below) 7."""
    if levelno >= logging.WARNING:
        return 1
    if levelno >= logging.INFO:
        return 3
    return 7


class RunLogHandler(logging.Handler):
    """Hands stdlib log records to :func:`plams_cli.core.logger.log` (see :func:`plams_level`)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` on the run's log, unless its level is shown nowhere."""
        level = plams_level(record.levelno)
        if level > logger_threshold():
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.levelno >= logging.WARNING:
                message = f"{record.levelname}: {message}"
            log(message, level)
        except Exception:  # noqa: BLE001 - as every logging handler: never fail the caller
            self.handleError(record)


_state: dict[str, object] = {}  # "handler", "level": what attach() changed, for detach()


def attach() -> None:
    """Forward the runners' records to the run's log from now on (once; ``init()`` calls it).

    A logger whose level was never set gets DEBUG, so INFO and DEBUG records reach the
    handler, which drops those shown nowhere; a level set by the user is kept.
    """
    if "handler" in _state:
        return
    logger = logging.getLogger(RUNNERS_LOGGER)
    handler = RunLogHandler()
    _state["handler"] = handler
    _state["level"] = logger.level
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


def detach() -> None:
    """Stop forwarding (``finish()`` calls it); the logger's level is put back."""
    handler = _state.pop("handler", None)
    if not isinstance(handler, logging.Handler):
        return
    logger = logging.getLogger(RUNNERS_LOGGER)
    logger.removeHandler(handler)
    level = _state.pop("level", logging.NOTSET)
    if logger.level == logging.DEBUG and isinstance(level, int):
        logger.setLevel(level)
