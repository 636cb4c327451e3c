"""tmp."""

import pytest


@pytest.fixture(scope="module")
def shared() -> int:
    """X."""
    return 1


@pytest.mark.parametrize("n", range(6))
def test_a(shared: int, n: int) -> None:
    """X."""
