"""The dtype vocabulary of features and feature sets, and its mapping from pandas.

A dtype says what kind of values a feature holds, not how many bits a column uses: an
``int8`` and an ``int64`` column both record ``int``, so downcasting a table does not give it
a new feature set. What does change meaning is kept: time zones, categories, and the
difference between dates, datetimes and durations.

Vocabulary (version 1 of the canonical encoding):

========================  ==================================================
``int``                   integers of any width, signed or unsigned, nullable
``float``                 floating point of any width
``num``                   any number (user-declared)
``bool``                  booleans, nullable
``str``                   text
``cat``                   categorical; ``cat[Label]`` names the label registry
``date``                  calendar dates
``datetime``              naive timestamps
``datetime[ZONE]``        time-zone aware timestamps, e.g. ``datetime[UTC]``
``timedelta``             durations
========================  ==================================================
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any, Final

import pandas as pd

from fsstore.errors import InvalidDtypeError, shorten

__all__ = ["DTYPES", "dtype_of_series", "normalize_dtype"]

DTYPES: Final = ("int", "float", "num", "bool", "str", "cat", "date", "datetime", "timedelta")

_CATEGORY: Final = re.compile(r"^cat\[([A-Za-z_][A-Za-z0-9_.]{0,199})\]$")
_ZONED: Final = re.compile(r"^datetime\[([^\[\]\x00-\x1f\x7f]{1,100})\]$")
_OFFSET: Final = re.compile(r"^UTC[+-]\d{2}:\d{2}$")

_ALIASES: Final[dict[str, str]] = {
    "integer": "int",
    "number": "num",
    "numeric": "num",
    "double": "float",
    "boolean": "bool",
    "string": "str",
    "text": "str",
    "object": "str",
    "category": "cat",
    "categorical": "cat",
    "timestamp": "datetime",
}

_PYTHON_TYPES: Final[dict[type, str]] = {int: "int", float: "float", bool: "bool", str: "str"}


def normalize_dtype(dtype: object) -> str:
    """Return the canonical spelling of a user-given dtype.

    Accepts the vocabulary above, common aliases (``"string"``, ``"category"``), the Python
    types ``int``, ``float``, ``bool`` and ``str``, and numpy/pandas dtype names such as
    ``"int64"``. Anything else raises :class:`InvalidDtypeError`.
    """
    if isinstance(dtype, type) and dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype]
    if not isinstance(dtype, str):
        try:
            return dtype_of_pandas_dtype(pd.api.types.pandas_dtype(dtype), context="")
        except (TypeError, ValueError):
            raise _unknown(repr(dtype)) from None
    text = dtype.strip()
    if text in DTYPES:
        return text
    lowered = text.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    if lowered in DTYPES:
        return lowered
    if _CATEGORY.match(text):
        return text
    zoned = _ZONED.match(text)
    if zoned:
        _check_zone(zoned.group(1))
        return text
    try:
        # A numpy or pandas name ("int64", "boolean") that maps to the vocabulary.
        return dtype_of_pandas_dtype(pd.api.types.pandas_dtype(text), context="")
    except (TypeError, ValueError):
        raise _unknown(repr(dtype)) from None


def dtype_of_series(series: pd.Series[Any], column: str) -> str:
    """Map the dtype of a pandas column to the vocabulary, inspecting object columns."""
    if series.dtype == object:
        return _dtype_of_object_values(series, column)
    return dtype_of_pandas_dtype(series.dtype, context=f"column {column!r}")


def dtype_of_pandas_dtype(dtype: Any, context: str) -> str:
    """Map a numpy, pandas extension or pyarrow-backed dtype to the vocabulary."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "cat"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return f"datetime[{dtype.tz}]"
    if isinstance(dtype, pd.SparseDtype):
        return dtype_of_pandas_dtype(dtype.subtype, context)
    if isinstance(dtype, pd.ArrowDtype):
        return _dtype_of_arrow_type(dtype.pyarrow_dtype, context)
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if isinstance(dtype, pd.StringDtype) or getattr(dtype, "kind", None) in ("U", "S"):
        return "str"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta"
    raise InvalidDtypeError(
        f"{context} has dtype {dtype!s}, which fsstore cannot record; "
        f"convert it to one of {', '.join(DTYPES)} first (for example with DataFrame.astype)"
    )


def _dtype_of_arrow_type(arrow_type: Any, context: str) -> str:
    import pyarrow as pa

    types = pa.types
    if types.is_boolean(arrow_type):
        return "bool"
    if types.is_integer(arrow_type):
        return "int"
    if types.is_floating(arrow_type) or types.is_decimal(arrow_type):
        return "float"
    if types.is_string(arrow_type) or types.is_large_string(arrow_type):
        return "str"
    if types.is_dictionary(arrow_type):
        return "cat"
    if types.is_timestamp(arrow_type):
        return f"datetime[{arrow_type.tz}]" if arrow_type.tz else "datetime"
    if types.is_date(arrow_type):
        return "date"
    if types.is_duration(arrow_type):
        return "timedelta"
    raise InvalidDtypeError(
        f"{context} has Arrow type {arrow_type}, which fsstore cannot record; "
        f"convert it to one of {', '.join(DTYPES)} first"
    )


_INFERRED: Final[dict[str, str]] = {
    "string": "str",
    "integer": "int",
    "floating": "float",
    "mixed-integer-float": "float",
    "decimal": "float",
    "boolean": "bool",
    "datetime64": "datetime",
    "datetime": "datetime",
    "date": "date",
    "timedelta64": "timedelta",
    "timedelta": "timedelta",
}


def _dtype_of_object_values(series: pd.Series[Any], column: str) -> str:
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in _INFERRED:
        mapped = _INFERRED[inferred]
        if mapped == "datetime":
            zones = {str(value.tzinfo) for value in series.dropna() if value.tzinfo is not None}
            if len(zones) == 1:
                return f"datetime[{zones.pop()}]"
        return mapped
    if inferred == "empty":
        raise InvalidDtypeError(
            f"column {column!r} holds only missing values, so its dtype cannot be inferred; "
            f"give it one with DataFrame.astype({{{column!r}: 'string'}}) or similar"
        )
    raise InvalidDtypeError(
        f"column {column!r} is an object column of {inferred} values, which fsstore cannot "
        f"record as one dtype; convert it first, e.g. DataFrame.astype({{{column!r}: 'string'}})"
    )


def _check_zone(zone: str) -> None:
    if zone == "UTC" or _OFFSET.match(zone):
        return
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidDtypeError(
            f"unknown time zone {zone!r} in datetime[{zone}]; use an IANA name such as "
            "'UTC' or 'Europe/Berlin', or an offset such as 'UTC+01:00'"
        ) from None


def _unknown(shown: str) -> InvalidDtypeError:
    return InvalidDtypeError(
        f"unknown dtype {shorten(shown)}; use one of {', '.join(DTYPES)}, "
        "'cat[Label]' or 'datetime[ZONE]'"
    )
