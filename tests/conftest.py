"""Fixtures every test module may use."""

import pytest

from fairal.store import Store


@pytest.fixture
def store():
    """An empty in-memory store."""
    with Store(memory=True) as s:
        yield s
