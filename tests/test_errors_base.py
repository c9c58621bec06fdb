"""One exceptions module: every error fairal raises on purpose shares a base and keeps its standard type."""

import pytest

from fairal import errors
from fairal.auth import AccessDenied, AuthError
from fairal.crowd import CrowdDataError
from fairal.datasets import DatasetError, load
from fairal.panda.policy import PolicyFileError
from fairal.panda.strategy import PolicyMismatchError
from fairal.projects import ProjectError
from fairal.store import DuplicateError, NotFoundError, Store, StoreError
from fairal.strategies import make_strategy
from fairal.strategies._base import EmptyPoolError, PoolExhaustedError
from fairal.trainers.models import ModelFileError


def test_every_library_error_shares_the_base_and_keeps_its_standard_type():
    value_errors = (AuthError, CrowdDataError, DatasetError, ModelFileError, PolicyFileError, ProjectError,
                    EmptyPoolError, PoolExhaustedError, PolicyMismatchError)
    for cls in (*value_errors, AccessDenied, StoreError, NotFoundError, DuplicateError):
        assert issubclass(cls, errors.FairalError) and cls.__module__ == "fairal.errors"
    assert all(issubclass(cls, ValueError) for cls in value_errors)
    assert issubclass(AccessDenied, PermissionError) and issubclass(NotFoundError, StoreError)


def test_raised_errors_are_caught_by_the_base(tmp_path):
    with pytest.raises(errors.FairalError, match="sensitive"):
        load("adult", sensitive="shoe size")
    with Store(tmp_path / "fairal.db") as store, pytest.raises(errors.FairalError):
        store.project(12345)
    with pytest.raises(errors.FairalError, match="exhausted"):
        make_strategy("random", random_state=0).query(None, [[0.0]] * 3, [0, 1], n=5)
