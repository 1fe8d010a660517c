"""What a test needs from the machine: under ``CI=true`` a missing need fails, elsewhere it skips.

CI provisions every need (the localhost SLURM, root for a tmpfs, the test extras), so there
a missing one is a broken CI set-up, never a reason to pass quietly.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["under_ci", "missing"]


def under_ci() -> bool:
    """Whether the tests run in CI (``CI=true``), where every need must be met."""
    return os.environ.get("CI") == "true"


def missing(message: str) -> NoReturn:
    """End the test for want of ``message``: fail under ``CI=true``, else skip."""
    if under_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)
