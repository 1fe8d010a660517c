"""The grid's messages: the stdlib logger ``plams_cli.runners.grid``, and who hears them.

Runners never import the core, so the grid only logs: WARNING for what the user should
know (a failing queue query, a job cancelled because the run was interrupted, a job id
that could not be recorded), INFO for details (a failed accounting query), ERROR for a
bug caught in the poller. While a run is initialised, the core attaches a handler to an
ancestor logger (``plams_cli.runners``) that forwards these records to the run's log.

Until something of plams-cli's own listens (a library user who never called ``init``),
:class:`StderrUntilHandled` prints WARNING and worse to stderr as ``plams: <message>``, as
the grid always did; it steps aside as soon as a handler sits on an ancestor logger below
the root (a bridge to the run's log, or the user's own ``logging`` set-up for plams_cli).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

__all__ = ["LOGGER_NAME", "logger", "StderrUntilHandled"]

#: the name of the grid's logger (a child of ``plams_cli.runners``)
LOGGER_NAME = "plams_cli.runners.grid"


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler


class StderrUntilHandled(_StreamHandler):
    """Print records to ``sys.stderr`` (as it is now) unless a plams-cli logger has another handler.

    Handlers on the root logger do not count: they are pytest's or the application's,
    which may not print.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("plams: %(message)s"))

    @property
    def stream(self) -> TextIO:
        """The current ``sys.stderr`` (tests and the CLI replace it)."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler.__init__ sets it; the property always answers sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        """Print ``record`` unless someone of plams-cli's own listens further up."""
        if not _handled_above(logging.getLogger(record.name)):
            super().emit(record)


def _handled_above(start: logging.Logger) -> bool:
    """Whether a logger from ``start`` up, below the root, has a handler other than this fallback."""
    current: logging.Logger | None = start
    while current is not None and not isinstance(current, logging.RootLogger):
        if any(not isinstance(h, StderrUntilHandled) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


#: the grid's logger
logger = logging.getLogger(LOGGER_NAME)
if not any(isinstance(h, StderrUntilHandled) for h in logger.handlers):
    logger.addHandler(StderrUntilHandled())
