"""Reading members from files: a column of a table, a table's header, 10x lists, plain lists.

Formats are chosen from the file name unless given, then checked against the content:

========== =================================================================
``csv``     comma-separated table with a header row (``.csv``)
``tsv``     tab-separated table with a header row (``.tsv``, ``.tab``)
``parquet`` Parquet table (``.parquet``, ``.pq``, or any file starting ``PAR1``)
``10x``     Cell Ranger ``features.tsv`` / ``genes.tsv``: no header; id, name, type
``list``    one value per line (``.txt``, ``.list``, anything else, standard input)
========== =================================================================

The content has the last word. Tab-separated rows whose third field is a 10x feature type
(``Gene Expression``, ``Antibody Capture``, ...) are a headerless 10x list whatever the
file is called, also on standard input; a file named like a 10x list but holding a header
row (as lists exported from HDF5 files do) is a ``tsv`` table; a "list" whose lines all
hold the same number of tabs is a ``tsv`` table. Compressed input (gzip, bzip2, xz, zstd)
is recognised by its first bytes, whatever its name, also on standard input (``-``).

Lines end at a line feed, optionally preceded by a carriage return; no other character
ends a line. Text cells are read as text and normalised the same way in every format:
surrounding white space (:data:`fsstore.canonical.WHITE_SPACE`) is removed, and an empty
cell or one of :data:`MISSING` is a missing value. Blank lines at the end of a file are not
values; blank lines before the end are missing values.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import logging
import lzma
import re
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fsstore.canonical import strip_white_space
from fsstore.dtypes import dtype_of_pandas_dtype, dtype_of_series
from fsstore.errors import DuplicateColumnError, UnsupportedFileError, first_line
from fsstore.featureset import Feature

__all__ = [
    "FORMATS",
    "MISSING",
    "Column",
    "Header",
    "detect_format",
    "read_column",
    "read_head",
    "read_header",
    "read_header_features",
    "read_table",
    "read_values",
    "sniff_format",
]

log = logging.getLogger(__name__)

FORMATS: Final = ("csv", "tsv", "parquet", "10x", "list")
STDIN: Final = "-"
MISSING: Final = frozenset({"NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "<NA>",
                            "#N/A"})
"""Cell values read as missing, besides empty and blank cells."""

_TENX_NAMES: Final = ("features.tsv", "genes.tsv")
_TENX_TYPES: Final = frozenset({"Gene Expression", "Antibody Capture", "CRISPR Guide Capture",
                                "Multiplexing Capture", "Custom", "Peaks",
                                "Protein Expression"})
_HEADER_WORDS: Final = frozenset({"id", "ids", "gene", "genes", "gene_id", "gene_ids",
                                  "gene_name", "gene_names", "name", "names", "symbol",
                                  "feature", "feature_id", "feature_name", "feature_type",
                                  "feature_types", "genome", "ensembl_id", "index"})
_SUFFIXES: Final = (".gz", ".bz2", ".xz", ".zst")
_PARQUET_MAGIC: Final = b"PAR1"
_BZIP2_MAGIC: Final = re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)")
"""A bzip2 stream: ``BZh``, the block size, then a block or the end-of-stream marker. The
three letters alone would also take a list whose first member starts with them (a list
starting with all ten characters still would; no identifier looks like that)."""
_SYMBOL_FIELD: Final = "symbol"
"""Fields of this name hold symbols, which a 10x list keeps in its second column."""
_SHOWN: Final = 8
_SNIFF_BYTES: Final = 1 << 16
_SNIFF_LINES: Final = 200
_SEPARATORS: Final = {",": "comma", "\t": "tab", ";": "semicolon"}


@dataclass(frozen=True)
class Column:
    """The values of one column, and where they came from."""

    name: str
    values: list[Any]
    chosen: bool = False
    """True when the column was picked because the table has only this one."""
    note: str | None = None
    """A sentence for people about a column picked by default (a 10x list's ids or names)."""


def detect_format(path: str) -> str:
    """Guess the format of ``path`` from its name (``-`` is standard input: a list)."""
    if path == STDIN:
        return "list"
    name = Path(path).name.lower()
    for suffix in _SUFFIXES:
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


def sniff_format(path: str, head: bytes) -> str:
    """The format of ``path`` judged from its name and its first (decompressed) bytes."""
    if head.startswith(_PARQUET_MAGIC) and b"\x00" in head:
        return "parquet"  # text never holds NUL; a list may start with the letters PAR1
    guessed = detect_format(path)
    if guessed == "parquet":
        return guessed
    text = _decode(head, path, partial=True)
    lines = [line for line in _split_lines(text)[:_SNIFF_LINES] if strip_white_space(line)]
    first = lines[0].split("\t") if lines else []
    if len(first) >= 3 and strip_white_space(first[2]) in _TENX_TYPES:
        if guessed != "10x":
            log.info("%s holds 10x feature rows (id, name, type); reading it as 10x", path)
        return "10x"
    if guessed == "10x" and not _looks_like_legacy_10x(first):
        log.info("%s is named like a 10x list but has a header row; reading it as tsv", path)
        return "tsv"
    if guessed == "list" and _tab_separated(lines):
        log.info("%s holds tab-separated columns; reading it as tsv", path)
        return "tsv"
    return guessed


def read_column(path: str, *, fmt: str | None = None, column: str | None = None,
                header: bool = True, feature_type: str | None = None,
                field: str | None = None) -> Column:
    """One column of a file, missing cells as None.

    ``column`` is a column name, or a 0-based position when the table has no such name
    (columns without a name in the header row are reached by position only). A table with
    a single column needs no ``column``. A 10x list defaults to its name column (1) when
    ``field`` (an itype) is a symbol field (``Gene.symbol``), else to its id column (0);
    :attr:`Column.note` then says which was read. The row index
    that pandas stores in a Parquet file is a column here, first, as in the csv of the
    same frame: a named index by its name, an unnamed one as ``index`` (``level_0``, ...
    for several levels).
    ``feature_type`` keeps only the 10x rows of that type (``Gene Expression``); a 10x file
    holding several types needs it.
    """
    data = _read_bytes(path)
    fmt = _resolve_format(path, fmt, data)
    if feature_type is not None and fmt != "10x":
        raise UnsupportedFileError(
            f"{path} is read as {fmt}, not as a 10x features list, so it has no feature "
            "types; drop --feature-type or pass --format 10x"
        )
    if fmt == "list":
        if column is not None:
            raise UnsupportedFileError(
                f"{path} is read as a plain list, which has no columns; pass --format csv or "
                "--format tsv if it is a table"
            )
        return Column("", _lines(data, path))
    if fmt == "parquet":
        # The schema first: repeated names are refused before pyarrow reads the table
        # (it cannot), and then only the chosen column is read.
        stored = _readable_columns(_parquet(data, path, schema_only=True), path)
        position, chosen = _choose_column(path, [name for name, _ in stored], column, fmt)
        name, field = stored[position]
        table = _parquet(data, path, columns=[field])
        return Column(name, _parquet_values(table.column(field), path, name), chosen)
    has_header = header and fmt != "10x"
    names, rows = _text_rows(data, path, fmt, has_header, every_name=None)
    note = None
    if fmt == "10x":
        rows = _rows_of_feature_type(rows, path, feature_type)
        if column is None:
            column, note = _tenx_column(path, field)
    position, chosen = _choose_column(path, names, column, fmt)
    name = names[position]
    if has_header and column is not None and column != name and len(names) > 1:
        # Chosen by position in a table read with a header: say what the header was, as a
        # table without one (a headerless GENCODE csv) loses its first row otherwise.
        note = (f"reading column {position} ({name!r}) of {path}; its first row was read as "
                f"the header ({_listed(names)}): pass --no-header if it holds values")
    values = [_cell(row[position]) if position < len(row) else None for row in rows]
    if has_header and not values:
        raise UnsupportedFileError(
            f"{path} has a header row ({_listed(names)}) and no values; "
            "pass --no-header if the first line holds values"
        )
    return Column(name, values, chosen, note)


def _tenx_column(path: str, field: str | None) -> tuple[str, str]:
    """The column of a 10x list to read for ``field``, and a note saying so."""
    if field is not None and field.rpartition(".")[2] == _SYMBOL_FIELD:
        return "1", (f"reading the names (column 1) of {path}, a 10x features list, for "
                     f"{field}; pass --column 0 for its ids")
    return "0", (f"reading the ids (column 0) of {path}, a 10x features list; pass "
                 "--column 1 for its names")


def read_values(path: str, *, fmt: str | None = None, column: str | None = None,
                header: bool = True, feature_type: str | None = None,
                field: str | None = None) -> list[Any]:
    """The values of one column of a file (see :func:`read_column`)."""
    return read_column(path, fmt=fmt, column=column, header=header,
                       feature_type=feature_type, field=field).values


def read_table(path: str, *, fmt: str | None = None, header: bool = True) -> Any:
    """A whole table, every cell as text: a DataFrame (csv, tsv) or an Arrow table (Parquet).

    Without a header, columns are named by their 0-based position (``"0"``, ``"1"``, ...).
    """
    data = _read_bytes(path)
    fmt = _resolve_format(path, fmt, data)
    if fmt == "parquet":
        return _parquet(data, path)
    if fmt == "list":
        raise UnsupportedFileError(
            f"{path} is read as a plain list; a registry needs a csv, tsv or parquet table "
            "(pass --format to override the guess)"
        )
    names, rows = _text_rows(data, path, fmt, header and fmt != "10x",
                             every_name="a registry table names its fields by its columns")
    width = len(names)
    cells = [[_cell(row[i]) if i < len(row) else None for i in range(width)] for row in rows]
    return pd.DataFrame(cells, columns=names, dtype=object)


def read_header_features(path: str, *, fmt: str | None = None) -> list[Feature]:
    """The columns of a table as Features, with dtypes inferred from the data.

    Only infers: nothing is validated against a registry, so the caller applies its own
    options (strict or lenient, which store) afterwards. A column without any value is
    recorded as pandas reads it (``float``) and logged as a warning; :func:`read_header`
    reports such columns to the caller instead.
    """
    header = read_header(path, fmt=fmt)
    dtypes = {feature.name: feature.dtype for feature in header.features}
    for name in header.empty:
        log.warning("column %r of %s holds no values; its dtype is recorded as %s, which is "
                    "what pandas reads for an empty column", name, path, dtypes[name])
    return header.features


@dataclass(frozen=True)
class Header:
    """The columns of a table as Features, in table order, and which of them are empty."""

    features: list[Feature]
    empty: tuple[str, ...] = ()
    """Columns of a csv or tsv table without a single value (see :func:`read_header`)."""


def read_header(path: str, *, fmt: str | None = None, dtypes: bool = True) -> Header:
    """The columns of a table as Features, with dtypes inferred from the data, unvalidated.

    With ``dtypes=False`` only the names are read (Features without a dtype), so a table
    with a header row and no data rows gives its names too.

    A Parquet table gives the dtypes of its schema (without the row index pandas stores).
    A csv or tsv table is read with pandas, which guesses each column's dtype from its
    values; a column with no values at all is recorded as ``float`` and listed in
    ``empty``, for the caller to tell (nothing is logged).
    """
    data = _read_bytes(path)
    fmt = _resolve_format(path, fmt, data)
    if fmt in ("list", "10x"):
        raise UnsupportedFileError(
            f"{path} is read as {fmt!r}, which has no header; --header needs a csv, tsv or "
            "parquet table (pass --format to override the guess)"
        )
    if fmt == "parquet":
        schema = _parquet(data, path, schema_only=True)
        names = _data_columns(schema, path)
        return Header([Feature(name, _dtype_of_arrow_field(schema.field(name)))
                       for name in names])
    text = _decode(data, path)
    separator = "," if fmt == "csv" else "\t"
    rows = _parsed_rows(text, path, fmt, header=True)  # the table's shape, checked first
    names = _checked_header(rows[0] if rows else [], path,
                            every_name="--header records every column by its name "
                            "(--column can read one column by name or position)")
    if not dtypes:
        return Header([Feature(name) for name in names])
    try:
        # pandas reads the rows as parsed and checked above (trailing empty fields dropped,
        # every row as wide as the header), written out again: it only infers the dtypes.
        frame = pd.read_csv(io.StringIO(_as_text(rows[1:], separator, len(names))),
                            sep=separator, header=None, names=names, keep_default_na=False,
                            na_values=["", *MISSING], skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise UnsupportedFileError(f"cannot read {path} as {fmt}: {first_line(error)}") from None
    if frame.empty:
        raise UnsupportedFileError(
            f"{path} has a header row and no data rows, so the dtypes of its columns cannot "
            "be told; add rows, or store the column names alone as members of another "
            "field (for example --header --field Column.name)"
        )
    # Names are unique (checked above), so columns are taken by name, one pass.
    features = [Feature(str(name), dtype_of_series(column, str(name)))
                for name, column in frame.items()]
    # A column without a single value has no dtype of its own; pandas reads it as float.
    # Refusing it would make real tables unlinkable (carData's MplsStops has an empty
    # citationIssued column), so its dtype is recorded as read, and said out loud.
    # Shortcoming: the same table with values in that column records another dtype, and
    # so another hash.
    without_values = frame.isna().all().to_numpy()
    empty = tuple(feature.name for feature, none in zip(features, without_values, strict=True)
                  if none)
    return Header(features, empty)


# -- formats ------------------------------------------------------------------------------


def _resolve_format(path: str, fmt: str | None, data: bytes) -> str:
    if fmt is not None and fmt not in FORMATS:
        raise UnsupportedFileError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt is not None:
        return fmt
    return sniff_format(path, data[:_SNIFF_BYTES])


def _looks_like_legacy_10x(first: list[str]) -> bool:
    """Cell Ranger 2 ``genes.tsv``: two columns (id, name), no header."""
    return len(first) == 2 and not any(strip_white_space(cell).lower() in _HEADER_WORDS
                                       for cell in first)


def _tab_separated(lines: list[str]) -> bool:
    """Every line holds the same, non-zero number of tabs (members never contain tabs)."""
    counts = {line.count("\t") for line in lines}
    return len(lines) > 0 and len(counts) == 1 and counts != {0}


def _rows_of_feature_type(rows: list[list[str]], path: str,
                          feature_type: str | None) -> list[list[str]]:
    types = [strip_white_space(row[2]) if len(row) > 2 else "" for row in rows]
    counts: dict[str, int] = {}
    for kind in types:
        counts[kind] = counts.get(kind, 0) + 1
    if feature_type is None and len(counts) <= 1:
        return rows
    listed = ", ".join(f"{count:,} {kind or '(no type)'!r}" for kind, count
                       in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if feature_type is None:
        raise UnsupportedFileError(
            f"{path} holds several feature types ({listed}); choose one with --feature-type, "
            "for example --feature-type 'Gene Expression'"
        )
    if feature_type not in counts:
        raise UnsupportedFileError(
            f"{path} has no rows of feature type {feature_type!r}; it holds {listed}"
        )
    return [row for row, kind in zip(rows, types, strict=True) if kind == feature_type]


# -- text ---------------------------------------------------------------------------------


def _lines(data: bytes, path: str) -> list[Any]:
    text = _decode(data, path)
    return [_cell(line) for line in _without_trailing_blanks(_split_lines(text))]


def _split_lines(text: str) -> list[str]:
    """Lines end at a line feed, with an optional carriage return before it (``\\r\\n``).

    Not :meth:`str.splitlines`, which also ends lines at U+000B, U+000C, U+001C to U+001E,
    U+0085, U+2028, U+2029 and a lone carriage return: a member holding one of those would
    silently become two. Here such characters stay in the member, where the canonical
    rules judge them (U+2028 is valid; control characters are refused).
    """
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the text ended with a line feed: no line follows it
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _text_rows(data: bytes, path: str, fmt: str, header: bool, *,
               every_name: str | None) -> tuple[list[str], list[list[str]]]:
    """The header (or positions as names) and the rows; see :func:`_checked_header`."""
    rows = _parsed_rows(_decode(data, path), path, fmt, header)
    if not rows:
        raise UnsupportedFileError(f"{path} is empty")
    if header:
        names = _checked_header(rows[0], path, every_name=every_name)
        return names, rows[1:]
    width = max(len(row) for row in rows)
    return [str(position) for position in range(width)], rows


def _parsed_rows(text: str, path: str, fmt: str, header: bool) -> list[list[str]]:
    """The rows of a csv or tsv text, refusing what is not a table.

    Broken quoting (a quote left open, text after a closing quote) and, below a header, a
    row with more non-empty fields than the header has names are errors naming the line:
    read on, they would shift or drop values silently. A row with fewer fields has
    missing cells, and empty fields after the last column (a trailing separator) are
    ignored.
    """
    separator = "," if fmt == "csv" else "\t"
    # The text is split at line feeds only (see _split_lines); the csv module then refuses
    # a lone carriage return in an unquoted cell instead of starting a row there.
    reader = csv.reader(io.StringIO(text), delimiter=separator, strict=True)
    rows: list[list[str]] = []
    try:
        for row in reader:
            if header and rows and len(row) > len(rows[0]) and any(rows[0]):
                extra = row[len(rows[0]):]
                if any(strip_white_space(cell) for cell in extra):
                    raise UnsupportedFileError(
                        f"line {reader.line_num} of {path} has {len(row):,} fields but the "
                        f"header has {len(rows[0]):,} ({_listed(rows[0])}); quote cells that "
                        f"hold the separator ({separator!r}), or fix the row"
                    )
                row = row[:len(rows[0])]
            rows.append(row)
    except csv.Error as error:
        if "new-line character" in str(error):
            raise UnsupportedFileError(
                f"line {reader.line_num} of {path} holds a carriage return that does not end "
                "the line (lines end at \\n or \\r\\n); quote that cell or remove it"
            ) from None
        raise UnsupportedFileError(
            f"line {reader.line_num} of {path} is not valid {fmt} ({error}); check the "
            "quotes from that line on: a cell that starts with a quote must end with one"
        ) from None
    rows = _without_trailing_blanks(rows)
    if header and rows:
        _check_separator(rows[0], separator, path, fmt)
        rows = _without_trailing_unnamed(rows)
    return rows


def _as_text(rows: list[list[str]], separator: str, width: int) -> str:
    """Rows as csv or tsv text, each cut or padded to ``width`` fields."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator="\n")
    for row in rows:
        writer.writerow(row[:width] + [""] * (width - len(row)))
    return out.getvalue()


def _check_separator(header: list[str], separator: str, path: str, fmt: str) -> None:
    """Refuse a header row that is one field holding another table separator: the file
    is not separated the way its name (or --format) says."""
    if len(header) != 1:
        return
    found = [other for other in _SEPARATORS if other != separator and other in header[0]]
    if found:
        named = _SEPARATORS[found[0]]
        fix = {",": "pass --format csv", "\t": "pass --format tsv"}.get(
            found[0], "convert it to comma- or tab-separated text first")
        raise UnsupportedFileError(
            f"{path} is read as {fmt} ({_SEPARATORS[separator]}-separated), but its header row "
            f"has no {_SEPARATORS[separator]} and holds {named}s: {_short(header[0])!r}. If "
            f"it is {named}-separated, {fix}")


def _without_trailing_unnamed(rows: list[list[str]]) -> list[list[str]]:
    """Drop columns at the end that have no name and no value (trailing separators)."""
    width = len(rows[0])
    while width > 1 and not strip_white_space(rows[0][width - 1]) and not any(
            width - 1 < len(row) and strip_white_space(row[width - 1]) for row in rows[1:]):
        width -= 1
    if width == len(rows[0]):
        return rows
    return [row[:width] for row in rows]


def _checked_header(row: list[str], path: str, *, every_name: str | None) -> list[str]:
    """Column names from a header row; unnamed columns are "".

    ``every_name`` says why every column needs a name, for callers that refuse unnamed ones.
    """
    names = [strip_white_space(name) for name in row]
    if not names or names == [""]:
        raise UnsupportedFileError(f"{path} is empty or its header row is blank")
    unnamed = [str(position) for position, name in enumerate(names) if not name]
    if unnamed and every_name:
        which = "columns" if len(unnamed) > 1 else "column"
        raise UnsupportedFileError(
            f"{which} {', '.join(unnamed)} (counting from 0) of {path} "
            f"{'have' if len(unnamed) > 1 else 'has'} no name in the header row (often a "
            f"saved row index); {every_name}, so name it or drop it"
        )
    repeated = sorted(name for name, count in Counter(names).items() if name and count > 1)
    if repeated:
        raise DuplicateColumnError(
            f"{path} has duplicate column names: {', '.join(map(repr, repeated))}; "
            "rename them so each column has one name",
            repeated,
        )
    return names


def _without_trailing_blanks(rows: list[Any]) -> list[Any]:
    end = len(rows)
    while end and not strip_white_space("".join(rows[end - 1])):
        end -= 1
    return rows[:end]


def _cell(value: Any) -> Any:
    if value is None:
        return None
    text = strip_white_space(str(value))
    return None if not text or text in MISSING else text


# -- Parquet ------------------------------------------------------------------------------


_PARQUET_FAILURES: Final = (pa.ArrowException, OSError, ValueError, UnicodeDecodeError,
                            KeyError, TypeError)
"""What decoding a damaged Parquet file can raise: pyarrow's errors, and Python's when a
damaged page decodes to bytes that are not UTF-8 or metadata that is not JSON."""


def _parquet(data: bytes, path: str, *, schema_only: bool = False,
             columns: list[str] | None = None) -> Any:
    source = pa.BufferReader(data)
    try:
        if schema_only:
            schema = pq.read_schema(source)
            schema.pandas_metadata  # noqa: B018 (parsed here, so damage is found here)
            return schema
        table = pq.read_table(source, columns=columns)
        # Damage inside a data page can decode to text that is not UTF-8; a full check
        # finds it here rather than wherever the values are first used.
        table.validate(full=True)
        return table
    except _PARQUET_FAILURES as error:
        raise _damaged_parquet(path, error) from None


def _damaged_parquet(path: str, error: BaseException) -> UnsupportedFileError:
    return UnsupportedFileError(
        f"cannot read {path} as Parquet ({type(error).__name__}: {first_line(error)}); "
        "the file is damaged or not Parquet: write it again from its source"
    )


def _data_columns(schema: pa.Schema, path: str) -> list[str]:
    """Column names, without the row index pandas stores, refusing repeated names.

    These are the columns ``DataFrame.to_parquet`` was given, as ``from_df`` of the frame
    sees them: what ``--header`` records.
    """
    index = {field for field, _ in _index_columns(schema)}
    names = [name for name in schema.names if name not in index]
    if not names:
        raise UnsupportedFileError(f"{path} is a Parquet table without columns: it has no "
                                   "column names to record")
    _refuse_repeats(names, path)
    unnamed = [str(position) for position, name in enumerate(names)
               if not strip_white_space(name)]
    if unnamed:
        raise UnsupportedFileError(
            f"column {', '.join(unnamed)} (counting from 0) of {path} has no name; "
            "--header records every column by its name, so name it or drop it")
    return names


def _readable_columns(schema: pa.Schema, path: str) -> list[tuple[str, str]]:
    """``(name, stored field)`` of every column one can read values from, index first.

    The row index pandas stores is a column like the others here (``--column``), placed
    and named as in the csv or tsv that ``to_csv`` of the frame's ``reset_index()`` writes.
    """
    index = _index_columns(schema)
    stored = {field for field, _ in index}
    data = [name for name in schema.names if name not in stored]
    columns = [(name if name not in data else field, field) for field, name in index]
    columns += [(name, name) for name in data]
    if not columns:
        raise UnsupportedFileError(f"{path} is a Parquet table without columns: it has no "
                                   "values to read")
    _refuse_repeats([name for name, _ in columns], str(path))
    return columns


def _index_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """``(stored field, name)`` of each index level pandas stored as a column."""
    metadata = schema.pandas_metadata or {}
    entries = metadata.get("index_columns", []) if isinstance(metadata, dict) else []
    fields = [entry for entry in entries if isinstance(entry, str)]  # not a RangeIndex
    names: dict[str, str] = {}
    for column in metadata.get("columns", []) if isinstance(metadata, dict) else []:
        if (isinstance(column, dict) and column.get("field_name") in fields
                and isinstance(column.get("name"), str)):
            names[column["field_name"]] = column["name"]
    # reset_index() names an unnamed index "index", and unnamed levels "level_0", ...
    unnamed = ["index"] if len(fields) == 1 else [f"level_{i}" for i in range(len(fields))]
    return [(field, names.get(field, unnamed[position]))
            for position, field in enumerate(fields) if field in schema.names]


def _refuse_repeats(names: list[str], where: str) -> None:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise DuplicateColumnError(
            f"{where} has duplicate column names: {', '.join(map(repr, repeated))}; "
            "rename them so each column has one name",
            repeated,
        )


def _parquet_values(values: pa.ChunkedArray, path: str, name: str) -> list[Any]:
    kind = values.type
    try:
        if pa.types.is_dictionary(kind):
            values = values.cast(kind.value_type)
            kind = kind.value_type
        if pa.types.is_integer(kind):
            return [None if value is None else str(value) for value in values.to_pylist()]
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return [_cell(value) for value in values.to_pylist()]
    except _PARQUET_FAILURES as error:
        raise _damaged_parquet(path, error) from None
    raise UnsupportedFileError(
        f"column {name!r} of {path} holds {kind} values; members are identifiers, so read "
        "them from a text or integer column"
    )


def _dtype_of_arrow_field(field: pa.Field) -> str:
    return dtype_of_pandas_dtype(pd.ArrowDtype(field.type), context=f"column {field.name!r}")


# -- columns ------------------------------------------------------------------------------


def _choose_column(path: str, names: list[str], column: str | None,
                   fmt: str) -> tuple[int, bool]:
    """The position of the column asked for, and whether it was chosen as the only one."""
    if column is None:
        if len(names) == 1:
            return 0, True
        raise UnsupportedFileError(
            f"{path} has {len(names):,} columns ({_listed(names)}); choose one with --column"
            + ("" if fmt == "10x" else
               ", or store the column names themselves (`fsstore add FILE --header`)")
        )
    if column not in names:
        # "name:0" and "pos:0" say which of the two a digit means (see the error below).
        kind, _, rest = column.partition(":")
        if kind == "name" and rest in names:
            return names.index(rest), False
        if kind == "pos" and rest.isdigit() and int(rest) < len(names):
            return int(rest), False
    by_position = column.isdigit() and int(column) < len(names)
    if column and column in names:
        if by_position and names[int(column)] != column:
            raise UnsupportedFileError(
                f"--column {column} of {path} is ambiguous: a column is named {column!r} in "
                f"the first row, and position {column} is column {names[int(column)]!r}; "
                f"pass --column name:{column} for the column named {column!r}, or --column "
                f"pos:{column} for position {column} (if the first row holds values, pass "
                "--no-header too)"
            )
        return names.index(column), False
    if by_position:
        return int(column), False
    hint = ("; it was read as a 10x list without a header, so pass --format tsv if it has "
            "one" if fmt == "10x" else "")
    raise UnsupportedFileError(f"{path} has no column {column!r}; its columns are "
                               f"{_listed(names)}{hint}")


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(_short(name)) if name else f"{position} (unnamed)"
                      for position, name in enumerate(names[:_SHOWN]))
    return shown + (", ..." if len(names) > _SHOWN else "")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- bytes --------------------------------------------------------------------------------


def _read_bytes(path: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()
    except FileNotFoundError:
        raise UnsupportedFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UnsupportedFileError(f"{path} is a folder, not a file") from None
    except OSError as error:
        raise UnsupportedFileError(f"cannot read {path}: {error.strerror or error}") from None
    return _decompressed(data, path)


def read_head(path: str, size: int = _SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of a file's content, decompressed if it is compressed."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(6)
            raw.seek(0)
            if magic.startswith(b"\x1f\x8b"):
                return gzip.GzipFile(fileobj=raw).read(size)
            if _BZIP2_MAGIC.match(raw.read(10)):
                raw.seek(0)
                return bz2.BZ2File(raw).read(size)
            raw.seek(0)
            if magic.startswith(b"\xfd7zXZ\x00"):
                return lzma.LZMAFile(raw).read(size)
            if magic.startswith(b"\x28\xb5\x2f\xfd"):
                return bytes(pa.CompressedInputStream(pa.PythonFile(raw, mode="r"),
                                                      "zstd").read(size))
            return raw.read(size)
    except FileNotFoundError:
        raise UnsupportedFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UnsupportedFileError(f"{path} is a folder, not a file") from None
    except (EOFError, zlib.error, lzma.LZMAError, pa.ArrowException) as error:
        raise UnsupportedFileError(f"{path} is compressed but damaged: {error}") from None
    except OSError as error:
        raise UnsupportedFileError(f"cannot read {path}: {error.strerror or error}") from None


def _decompressed(data: bytes, path: str) -> bytes:
    try:
        if data.startswith(b"\x1f\x8b"):
            return gzip.decompress(data)
        if _BZIP2_MAGIC.match(data):
            return bz2.decompress(data)
        if data.startswith(b"\xfd7zXZ\x00"):
            return lzma.decompress(data)
        if data.startswith(b"\x28\xb5\x2f\xfd"):
            stream = pa.CompressedInputStream(pa.BufferReader(data), "zstd")
            return bytes(stream.read())
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError,
            pa.ArrowException) as error:
        raise UnsupportedFileError(f"{path} is compressed but damaged: {error}") from None
    return data


def _decode(data: bytes, path: str, *, partial: bool = False) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Spreadsheet programs save "Unicode text" as UTF-16 with a byte-order mark.
        try:
            return data.decode("utf-16", errors="ignore" if partial else "strict")
        except UnicodeDecodeError:
            raise UnsupportedFileError(
                f"{path} starts like UTF-16 text but does not decode as UTF-16; save it as "
                "UTF-8") from None
    if b"\x00" in data[:8192]:
        raise UnsupportedFileError(
            f"{path} looks like a binary file, not text; fsstore reads csv, tsv, Parquet, "
            "10x lists and plain lists (compressed or not)"
        )
    try:
        return data.decode("utf-8-sig", errors="ignore" if partial else "strict")
    except UnicodeDecodeError:
        raise UnsupportedFileError(
            f"{path} is not UTF-8 text; convert it first (for example "
            "`iconv -f latin1 -t utf-8`)"
        ) from None


