"""Reading members from files: a column of a table, a table's header, 10x lists, plain lists.

Formats are chosen from the file name unless given:

========== =================================================================
``csv``     comma-separated table with a header row (``.csv``)
``tsv``     tab-separated table with a header row (``.tsv``, ``.tab``)
``parquet`` Parquet table (``.parquet``, ``.pq``)
``10x``     Cell Ranger ``features.tsv`` / ``genes.tsv``: no header; id, name, type
``list``    one value per line (``.txt``, ``.list``, anything else, standard input)
========== =================================================================

Compressed files (``.gz``, ``.bz2``, ``.xz``, ``.zst``) are read transparently.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fsstore.dtypes import dtype_of_pandas_dtype
from fsstore.errors import UnsupportedFileError
from fsstore.featureset import Feature

__all__ = ["FORMATS", "detect_format", "read_header_features", "read_table", "read_values"]

FORMATS: Final = ("csv", "tsv", "parquet", "10x", "list")
STDIN: Final = "-"

_COMPRESSED: Final[dict[str, Callable[..., Any]]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
_TENX_NAMES: Final = ("features.tsv", "genes.tsv")


def detect_format(path: str) -> str:
    """Guess the format of ``path`` from its name (``-`` is standard input: a list)."""
    if path == STDIN:
        return "list"
    name = Path(path).name.lower()
    for suffix in (*_COMPRESSED, ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith(_TENX_NAMES):
        return "10x"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "list"


def read_values(path: str, *, fmt: str | None = None, column: str | None = None,
                header: bool = True) -> list[Any]:
    """The values of one column of a file, missing cells as None.

    ``column`` is a column name, or a 0-based position when the table has no such name.
    Tables with a single column need no ``column``; 10x files default to the id column.
    """
    fmt = _checked_format(path, fmt)
    if fmt == "list":
        if column is not None:
            raise UnsupportedFileError(f"{path} is read as a plain list; it has no columns")
        return _read_lines(path)
    if fmt == "parquet":
        table = _read_parquet(path)
        name = _choose_column(path, [str(field) for field in table.column_names], column)
        return list(table.column(name).to_pylist())
    frame = _read_text_table(path, fmt, header=header and fmt != "10x")
    if fmt == "10x" and column is None:
        column = "0"
    name = _choose_column(path, [str(label) for label in frame.columns], column)
    series = frame[frame.columns[[str(label) for label in frame.columns].index(name)]]
    return [None if pd.isna(value) else value for value in series.tolist()]


def read_table(path: str, *, fmt: str | None = None, header: bool = True) -> Any:
    """A whole table, every cell as text: a DataFrame (csv, tsv) or an Arrow table (Parquet).

    Without a header, columns are named by their 0-based position (``"0"``, ``"1"``, ...).
    """
    fmt = _checked_format(path, fmt)
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt == "list":
        raise UnsupportedFileError(
            f"{path} is read as a plain list; a registry needs a csv, tsv or parquet table "
            "(pass --format to override the guess)"
        )
    return _read_text_table(path, "tsv" if fmt == "10x" else fmt,
                            header=header and fmt != "10x")


def read_header_features(path: str, *, fmt: str | None = None) -> list[Feature]:
    """The columns of a table as Features, with dtypes inferred from the data."""
    from fsstore.featureset import FeatureSet

    fmt = _checked_format(path, fmt)
    if fmt in ("list", "10x"):
        raise UnsupportedFileError(
            f"{path} is read as {fmt!r}, which has no header; --header needs a csv, tsv or "
            "parquet table (pass --format to override the guess)"
        )
    if fmt == "parquet":
        schema = _read_parquet(path, schema_only=True)
        return [Feature(field.name, _dtype_of_arrow_field(field)) for field in schema]
    frame = _read_text_table(path, fmt, header=True, infer=True)
    return FeatureSet.from_df(frame).features


def _checked_format(path: str, fmt: str | None) -> str:
    chosen = fmt or detect_format(path)
    if chosen not in FORMATS:
        raise UnsupportedFileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if path == STDIN and chosen != "list":
        raise UnsupportedFileError("standard input is read as a plain list, one value per line")
    return chosen


def _read_lines(path: str) -> list[Any]:
    data = sys.stdin.buffer.read() if path == STDIN else _read_bytes(path)
    text = _decode(data, path)
    return [line if line.strip() else None for line in text.splitlines()]


def _read_text_table(path: str, fmt: str, *, header: bool, infer: bool = False) -> pd.DataFrame:
    options: dict[str, Any] = {
        "sep": "," if fmt == "csv" else "\t",
        "header": 0 if header else None,
    }
    if not infer:
        # A blank line in a column of identifiers is a missing value, not nothing.
        options["dtype"] = str
        options["skip_blank_lines"] = False
    try:
        frame: pd.DataFrame = pd.read_csv(io.BytesIO(_read_bytes(path)), encoding="utf-8-sig",
                                          **options)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise UnsupportedFileError(f"cannot read {path} as {fmt}: {_first_line(error)}") from None
    if not header:
        frame.columns = [str(position) for position in range(frame.shape[1])]
    elif infer:
        _reject_mangled_duplicates(path, fmt)
    return frame


def _reject_mangled_duplicates(path: str, fmt: str) -> None:
    # pandas renames a repeated header "x" to "x.1", so read the header row itself.
    from fsstore.errors import DuplicateColumnError

    text = _decode(_read_bytes(path), path)
    first = text.splitlines()[0] if text else ""
    header = next(csv.reader([first], delimiter="," if fmt == "csv" else "\t"), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DuplicateColumnError(
            f"{path} has duplicate column names: {', '.join(map(repr, repeated))}; "
            "rename them so each feature has one name",
            repeated,
        )


def _read_parquet(path: str, *, schema_only: bool = False) -> Any:
    try:
        return pq.read_schema(path) if schema_only else pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise UnsupportedFileError(f"cannot read {path} as Parquet: {error}") from None


def _dtype_of_arrow_field(field: pa.Field) -> str:
    return dtype_of_pandas_dtype(pd.ArrowDtype(field.type), context=f"column {field.name!r}")


def _choose_column(path: str, names: list[str], column: str | None) -> str:
    if column is None:
        if len(names) == 1:
            return names[0]
        shown = ", ".join(repr(name) for name in names[:8])
        raise UnsupportedFileError(
            f"{path} has {len(names)} columns ({shown}{', ...' if len(names) > 8 else ''}); "
            "choose one with --column, or use --header to store the column names themselves"
        )
    if column in names:
        return column
    if column.isdigit() and int(column) < len(names):
        return names[int(column)]
    raise UnsupportedFileError(
        f"{path} has no column {column!r}; its columns are "
        f"{', '.join(repr(name) for name in names[:8])}{', ...' if len(names) > 8 else ''}"
    )


def _read_bytes(path: str) -> bytes:
    opener = _COMPRESSED.get(Path(path).suffix.lower())
    try:
        if opener is not None:
            with opener(path, "rb") as handle:
                return bytes(handle.read())
        if path.lower().endswith(".zst"):
            raise UnsupportedFileError(f"{path}: decompress .zst files first (zstd -d)")
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UnsupportedFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UnsupportedFileError(f"{path} is a folder, not a file") from None
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise UnsupportedFileError(f"cannot read {path}: {error}") from None


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


def _not_utf8(path: str) -> UnsupportedFileError:
    return UnsupportedFileError(
        f"{path} is not UTF-8 text; convert it first (for example `iconv -f latin1 -t utf-8`)"
    )


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
