"""Fixtures of the core tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plams_cli.core import lifecycle
from tests.core.observing import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    observer = Recorder()
    with lifecycle.observing(observer):
        yield observer
