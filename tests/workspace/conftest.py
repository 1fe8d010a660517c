"""Fixtures of the workspace tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plams_cli.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace."""
    return Workspace(tmp_path / "project", create=True)


@pytest.fixture
def runner() -> CliRunner:
    """A click test runner."""
    return CliRunner()
