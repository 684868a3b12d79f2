"""The exception hierarchy: one root, builtin leaves, attributes that survive pickling."""

from __future__ import annotations

import errno
import inspect
import pickle

import pytest

import fsstore.errors as errors
from fsstore import FsstoreError

CLASSES = [getattr(errors, name) for name in errors.__all__]


def example(cls: type[FsstoreError]) -> FsstoreError:
    """An instance built with a realistic value for each constructor argument."""
    values = {"path": "/team/store/objects/sets/ab/ab12.parquet", "lock_path": "/s/index/lock",
              "expected": "ab" * 32, "errno": errno.ENOSPC, "ref": "GRCh38"}
    parameters = list(inspect.signature(cls.__init__).parameters.values())[2:]
    arguments = [values.get(parameter.name, ["CD8A", "CD4"]) for parameter in parameters
                 if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    return cls("what happened, where, and what to do", *arguments)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_is_an_fsstore_error_and_a_builtin(cls: type[FsstoreError]) -> None:
    assert issubclass(cls, FsstoreError)
    if cls is not FsstoreError:
        builtins = [base for base in cls.__mro__ if base.__module__ == "builtins"
                    and base not in (object, BaseException, Exception)]
        assert builtins, f"{cls.__name__} derives from no builtin error"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_survives_pickling_with_its_attributes(cls: type[FsstoreError]) -> None:
    error = example(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert getattr(copy, "errno", None) == getattr(error, "errno", None)


def test_a_storage_error_keeps_its_errno_and_file_name() -> None:
    error = errors.StorageError("cannot write x: the disk is full", "/s/x", errno.ENOSPC)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.errno, copy.filename, copy.path) == (errno.ENOSPC, "/s/x", "/s/x")
    assert str(copy) == str(error) == "cannot write x: the disk is full"
    assert isinstance(copy, OSError)
