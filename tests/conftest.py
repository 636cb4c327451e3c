"""Shared fixtures: checked-in cgroup trees under tests/fixtures/cgroup/."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(name="cgroup_root")
def _cgroup_root() -> object:
    """Return a function mapping a fixture tree's name to its directory."""

    def root(name: str) -> Path:
        path = FIXTURES / "cgroup" / name
        assert path.is_dir(), f"no cgroup fixture {name}"
        return path

    return root
