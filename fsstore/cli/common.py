"""What every command shares: the store and JSON options, output, and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import click
import pandas as pd

from fsstore.errors import (
    AmbiguousReferenceError,
    CorruptObjectError,
    FsstoreError,
    IndexConflictError,
    IndexCorruptError,
    InvalidInputError,
    LockTimeoutError,
    OutputExistsError,
    ReferenceNotFoundError,
    StorageError,
    StoreNotFoundError,
    StoreURLError,
    SyncError,
    UpdateConflictError,
)
from fsstore.store import ENV_STORE, Store, default_store

__all__ = [
    "EXIT_CODES",
    "emit_json",
    "exit_code_of",
    "feature_type_option",
    "json_option",
    "open_store",
    "print_table",
    "short",
    "store_option",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES: Final[tuple[tuple[int, str, tuple[type[BaseException], ...]], ...]] = (
    (3, "not found: no such set, name or store, or a reference matching several",
     (ReferenceNotFoundError, AmbiguousReferenceError, StoreNotFoundError)),
    (4, "invalid input: it was not stored (of many files, the others were)",
     (InvalidInputError, StoreURLError, OutputExistsError)),
    (5, "integrity: a stored object or the index is damaged",
     (CorruptObjectError, IndexCorruptError, SyncError)),
    (6, "busy: the store lock or index stayed contended",
     (LockTimeoutError, IndexConflictError, UpdateConflictError)),
    (7, "storage: the file system refused a read or write, or a bucket is out of reach",
     (StorageError,)),
)
"""Exit status by error type; any other fsstore error exits with 1, a usage error with 2."""

SHORT_HASH: Final = 12


def exit_code_of(error: FsstoreError) -> int:
    for code, _, kinds in EXIT_CODES:
        if isinstance(error, kinds):
            return code
    return 1


def store_option(function: F) -> F:
    """``--store PATH`` (or ``FSSTORE_DIR``); default: the nearest ``.fsstore`` upward."""
    return click.option(
        "--store", "store_path", envvar=ENV_STORE, metavar="PATH",
        help=f"Store folder or URL (s3://, gs://, az://) [env {ENV_STORE}; default: nearest "
        ".fsstore folder upward].",
    )(function)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON instead of text.")(function)


def feature_type_option(function: F) -> F:
    """``--feature-type TYPE``: the rows of one type of a 10x features list."""
    return click.option(
        "--feature-type", "feature_type", metavar="TYPE",
        help="For a 10x features list holding several types: read the rows of this type, "
        "e.g. 'Gene Expression'.",
    )(function)


def open_store(store_path: str | None) -> Store:
    refuse_empty_store(store_path)
    return Store(store_path) if store_path else default_store()


def refuse_empty_store(store_path: str | None) -> None:
    """An empty --store is most often a script's unset variable: refuse it rather than
    fall back to the nearest store, which may be another one."""
    if store_path is not None and not store_path.strip():
        raise click.UsageError("--store is empty; give a store folder or URL, or leave the "
                               "option out to use the nearest .fsstore folder")


def short(hash_hex: str) -> str:
    return hash_hex[:SHORT_HASH]


def emit_json(document: Any) -> None:
    """Print a document as JSON; NaN and NaT (pandas' missing values) become null."""
    click.echo(json.dumps(_without_nan(document), indent=2, ensure_ascii=False,
                          default=_json_default, allow_nan=False))


def plural(count: int, noun: str) -> str:
    """``1 member``, ``2 members``, ``36,601 members``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _without_nan(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(item) for item in value]
    if isinstance(value, float) and value != value:
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                title: str | None = None) -> None:
    """Render rows as a table on standard output (plain when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
    with console.capture() as captured:
        console.print(table)
    # rich pads every cell to its column's width, the last column too; drop that padding.
    click.echo("\n".join(line.rstrip(" ") for line in captured.get().split("\n")), nl=False)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return str(value)


def format_time(moment: Any) -> str:
    if hasattr(moment, "to_pydatetime"):
        moment = moment.to_pydatetime()
    if isinstance(moment, datetime):
        return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return "-" if moment is None else str(moment)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")
