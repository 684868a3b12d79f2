"""Datasets: what a file or an in-memory table is (its BLAKE3 identity) and which sets it has.

A dataset is identified by the BLAKE3-256 digest of its bytes, read in chunks so that a file
of any size is hashed in constant memory. Its feature sets are derived by *slot*:

============ ========================= ==========================================
format       slots                     members
============ ========================= ==========================================
``csv``      ``columns``               the header, as Features with inferred dtypes
``tsv``      ``columns``               same
``parquet``  ``columns``               the schema, as Features (no rows are read)
``10x``      ``var`` (+ one per type)  the id column; other feature types than
                                       ``Gene Expression`` fill a slot named after
                                       the type (``antibody_capture``)
``h5ad``     ``var``, ``obs``          ``var_names``; the ``obs`` columns as Features
``h5mu``     ``obs``, ``MOD:var``,     per modality MOD (``rna``, ``prot``) its
             ``MOD:obs``               ``var_names`` and ``obs`` columns; ``obs``:
                                       the columns of the file's shared ``obs``
============ ========================= ==========================================

A gene modality's ``var_names`` (modality ``rna``, ``gex``, or any whose names are all
Ensembl gene ids) are ``Gene`` ids; any other modality's (antibodies of ``prot``, peaks of
``atac``) are ``Feature.name`` values. MuData files are read with h5py and anndata alone,
only their ``obs`` and ``var`` tables, so the ``mudata`` package is needed only to link an
in-memory MuData object.

Derived sets record what the dataset measures, every identifier of it: they are not
validated against the store's registries (which would drop the ids a registry version
lacks, or fail where several organisms are registered). Validate a dataset's identifiers
with ``fsstore validate``, or link a validated set to a slot explicitly.

An in-memory object is first written to a file (a DataFrame to Parquet, an AnnData to
``.h5ad``, a MuData to ``.h5mu``) and that file is the dataset: its bytes give the identity
and, with ``copy``, are what the store keeps. The same object written by the same library
versions gives the same bytes; a newer pyarrow, anndata or mudata may write different bytes
for it, and so give it a new identity (see the README).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
from blake3 import blake3

from fsstore.errors import (
    FsstoreError,
    InvalidSlotError,
    MissingDependencyError,
    UnsupportedFileError,
    first_line,
)
from fsstore.featureset import FeatureSet
from fsstore.readers import (
    detect_format,
    read_head,
    read_header_features,
    read_table,
    sniff_format,
)

__all__ = [
    "DATASET_FORMATS",
    "DatasetSource",
    "anndata_module",
    "check_slot",
    "detect_dataset_format",
    "file_digest",
    "guess_gene_field",
    "read_dataset",
    "read_object",
]

log = logging.getLogger(__name__)

DATASET_FORMATS: Final = ("csv", "tsv", "parquet", "10x", "h5ad", "h5mu")
"""File formats a dataset can be read from."""
OBJECT_FORMATS: Final = ("dataframe", "anndata")
"""What an in-memory dataset was, recorded as its format."""
CHUNK: Final = 1 << 20
GENE_EXPRESSION: Final = "Gene Expression"
ENSEMBL_FIELD: Final = "Gene.ensembl_gene_id"
SYMBOL_FIELD: Final = "Gene.symbol"
_ENSEMBL: Final = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
_GENE_MODALITIES: Final = frozenset({"rna", "gex", "gene_expression", "genes", "rna_seq"})
"""MuData modalities whose ``var_names`` are genes (others are Features), lower case."""
_SLOT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


@dataclass
class DatasetSource:
    """A dataset read from a file or an object, ready to be registered."""

    digest: str
    """BLAKE3-256 of the file's bytes, 64 lower-case hex characters."""
    size: int
    format: str
    path: str | None
    """The absolute path it was read from; None for an in-memory object."""
    slots: dict[str, FeatureSet] = field(default_factory=dict)
    file: str | None = None
    """A local file holding the bytes (for ``copy``); for objects, a temporary file."""


def check_slot(slot: object) -> str:
    """Return ``slot`` if it is a usable slot name, else raise :class:`InvalidSlotError`."""
    if not isinstance(slot, str) or not _SLOT.match(slot):
        raise InvalidSlotError(
            f"slot name {slot!r} is not usable: use 1 to 64 letters, digits or '_.:-', "
            "starting with a letter or '_' (for example 'columns', 'var', 'obs')"
        )
    return slot


def file_digest(path: str | os.PathLike[str]) -> tuple[str, int]:
    """BLAKE3-256 hex digest and size of a file, read in 1 MiB chunks."""
    hasher = blake3()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise UnsupportedFileError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UnsupportedFileError(f"{path} is a folder, not a dataset file") from None
    except OSError as error:
        raise UnsupportedFileError(f"cannot read {path}: {error.strerror or error}") from None
    return hasher.hexdigest(), size


def detect_dataset_format(path: str) -> str:
    """The dataset format of a file: its name says whether it is a dataset, its content which.

    A ``.tsv`` file holding 10x feature rows is a ``10x`` list, a ``features.tsv`` with a
    header row is a ``tsv`` table (see :func:`fsstore.readers.sniff_format`).
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".h5ad", ".h5mu"):
        return suffix[1:]
    guessed = detect_format(path)
    if guessed in DATASET_FORMATS:
        return sniff_format(path, read_head(path))
    raise UnsupportedFileError(
        f"cannot tell what kind of dataset {path} is; name it .csv, .tsv, .parquet, .h5ad, "
        ".h5mu or features.tsv(.gz), or pass the format (--format)"
    )


def guess_gene_field(values: list[str]) -> str:
    """``Gene.ensembl_gene_id`` when every value is an Ensembl gene id, else ``Gene.symbol``."""
    if values and all(_ENSEMBL.match(value.strip()) for value in values):
        return ENSEMBL_FIELD
    return SYMBOL_FIELD


def read_dataset(path: str | os.PathLike[str], *, fmt: str | None = None,
                 var_field: str | None = None) -> DatasetSource:
    """Hash a dataset file and derive its feature sets, one per slot."""
    location = os.path.abspath(Path(path).expanduser())  # without `..`: one path, one file
    if not os.path.lexists(location):
        raise UnsupportedFileError(f"{location} does not exist")
    chosen = fmt or detect_dataset_format(location)
    if chosen not in DATASET_FORMATS:
        raise UnsupportedFileError(
            f"unknown dataset format {fmt!r}; use one of {', '.join(DATASET_FORMATS)}"
        )
    digest, size = file_digest(location)
    if chosen in ("csv", "tsv", "parquet"):
        # The same reader as `fsstore add --header`, so both give the same set. For CSV and
        # TSV it infers dtypes from every row, so a table larger than memory cannot be
        # linked yet (Parquet reads only the schema).
        slots = {"columns": FeatureSet(read_header_features(location, fmt=chosen))}
    elif chosen == "10x":
        slots = _tenx_slots(location, var_field)
    elif chosen == "h5mu":
        slots = _mudata_file_slots(location, var_field)
    else:
        slots = _anndata_file_slots(location, var_field)
    log.debug("read dataset %s (%s, %d bytes): slots %s", location, chosen, size,
              sorted(slots))
    return DatasetSource(digest, size, chosen, location, slots, location)


@contextlib.contextmanager
def read_object(obj: Any, *, var_field: str | None = None) -> Iterator[DatasetSource]:
    """Write an in-memory DataFrame or AnnData to a temporary file and read it as a dataset.

    The temporary file exists while the context is open (so that it can be copied into the
    store) and is removed afterwards.
    """
    folder = tempfile.mkdtemp(prefix="fsstore-dataset-")
    try:
        if isinstance(obj, pd.DataFrame):
            target = os.path.join(folder, "dataset.parquet")
            slots = {"columns": FeatureSet.from_df(obj, strict=False, validate=False)}
            _write_parquet(obj, target)
            kind = "dataframe"
        elif _is_anndata(obj):
            target = os.path.join(folder, "dataset.h5ad")
            slots = _anndata_slots(obj, var_field)
            _write_object(obj.write_h5ad, target, "AnnData")
            kind = "anndata"
        elif _is_instance_of(obj, "MuData", "mudata"):
            # Slots come from the file written, as for a .h5mu file linked by path.
            target = os.path.join(folder, "dataset.h5mu")
            _write_object(obj.write_h5mu, target, "MuData")
            slots = _mudata_file_slots(target, var_field)
            kind = "mudata"
        else:
            raise UnsupportedFileError(
                f"cannot register a {type(obj).__name__} as a dataset; give a file path, a "
                "pandas DataFrame, an AnnData or a MuData object"
            )
        digest, size = file_digest(target)
        yield DatasetSource(digest, size, kind, None, slots, target)
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def _write_object(write: Callable[[str], object], target: str, kind: str) -> None:
    """Write an in-memory object with its package's writer; its refusals become ours."""
    try:
        write(target)
    except MemoryError:
        raise
    except Exception as error:  # noqa: BLE001  # anndata raises many types, IORegistryError...
        raise UnsupportedFileError(
            f"cannot write this {kind} object to a file to register it: "
            f"{type(error).__name__}: {first_line(error)}; convert the columns it cannot write "
            "(for example datetime obs columns to strings) and link it again") from None


def anndata_module() -> Any:
    """The ``anndata`` package, or a clear error saying how to install it."""
    try:
        return importlib.import_module("anndata")
    except ImportError:
        raise MissingDependencyError(
            "reading AnnData (.h5ad) or MuData (.h5mu) needs the optional anndata package; "
            "install it with `pip install 'fsstore[anndata]'`"
        ) from None


def _write_parquet(frame: pd.DataFrame, target: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise UnsupportedFileError(
            f"cannot write the DataFrame as Parquet ({error}); convert mixed-type object "
            "columns to one type first"
        ) from None
    # Fixed writer options, so that the same frame gives the same bytes every time.
    pq.write_table(table, target, compression="zstd", write_statistics=True)


def _tenx_slots(path: str, var_field: str | None) -> dict[str, FeatureSet]:
    # The shared reader: decompression by content, cells normalised as `fsstore add` does.
    frame = read_table(path, fmt="10x")
    ids = frame.iloc[:, 0]
    types = (frame.iloc[:, 2].fillna("") if frame.shape[1] >= 3
             else pd.Series([GENE_EXPRESSION] * len(ids)))
    slots: dict[str, FeatureSet] = {}
    for feature_type in sorted(set(types)):
        values = ids[types == feature_type].tolist()
        if feature_type == GENE_EXPRESSION:
            field_name = var_field or guess_gene_field(values)
            slots["var"] = FeatureSet.from_values(values, field=field_name, strict=False,
                                                  validate=False)
        else:
            slot = check_slot(re.sub(r"[^A-Za-z0-9]+", "_", feature_type).strip("_").lower()
                              or "features")
            slots[slot] = FeatureSet.from_values(values, field="Feature.name", strict=False,
                                                 validate=False)
    return slots


def _is_anndata(obj: Any) -> bool:
    return _is_instance_of(obj, "AnnData", "anndata")


def _is_instance_of(obj: Any, class_name: str, package: str) -> bool:
    """Whether ``obj`` is a ``package.class_name``, without importing ``package``."""
    return any(klass.__name__ == class_name and klass.__module__.startswith(package)
               for klass in type(obj).__mro__)


def _anndata_file_slots(path: str, var_field: str | None) -> dict[str, FeatureSet]:
    anndata = anndata_module()
    import h5py  # installed with anndata

    try:
        with h5py.File(path, "r") as file:
            absent = [name for name in ("obs", "var") if not isinstance(file.get(name),
                                                                         h5py.Group)]
    except OSError as error:
        raise UnsupportedFileError(f"cannot read {path} as AnnData (.h5ad): {error}") from None
    if absent:
        raise UnsupportedFileError(
            f"{path} is not an AnnData file: it has no {' and no '.join(absent)} table; "
            "write it with anndata's write_h5ad")
    try:
        # Backed mode reads obs and var and leaves the matrices on disk.
        adata = anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UnsupportedFileError(f"cannot read {path} as AnnData (.h5ad): {error}") from None
    try:
        return _anndata_slots(adata, var_field)
    finally:
        if adata.isbacked:
            adata.file.close()


def _anndata_slots(adata: Any, var_field: str | None) -> dict[str, FeatureSet]:
    slots: dict[str, FeatureSet] = {}
    var_names = [str(name) for name in adata.var_names]
    if var_names:
        slots["var"] = FeatureSet.from_values(var_names, field=var_field
                                              or guess_gene_field(var_names), strict=False,
                                              validate=False)
    if len(adata.obs.columns):
        slots["obs"] = FeatureSet.from_df(adata.obs, strict=False, validate=False)
    return slots


def _mudata_file_slots(path: str, var_field: str | None) -> dict[str, FeatureSet]:
    """The slots of a ``.h5mu`` file, from its ``obs`` and ``var`` tables alone."""
    anndata = anndata_module()
    import h5py  # installed with anndata

    read_elem = _read_elem(anndata)
    try:
        with h5py.File(path, "r") as file:
            if not isinstance(file.get("mod"), h5py.Group):
                raise UnsupportedFileError(
                    f"{path} is not a MuData file: it has no 'mod' group of modalities (an "
                    "AnnData file is named .h5ad)")
            slots: dict[str, FeatureSet] = {}
            if isinstance(file.get("obs"), h5py.Group):
                slots.update(_obs_slot("obs", read_elem(file["obs"])))
            for modality in sorted(file["mod"]):
                group = file["mod"][modality]
                prefix = _modality_prefix(modality)
                var_names = [str(name) for name in read_elem(group["var"]).index]
                if var_names:
                    field_name = _modality_field(modality, var_names, var_field)
                    slots[f"{prefix}:var"] = FeatureSet.from_values(
                        var_names, field=field_name, strict=False, validate=False)
                slots.update(_obs_slot(f"{prefix}:obs", read_elem(group["obs"])))
    except FsstoreError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise UnsupportedFileError(f"cannot read {path} as MuData (.h5mu): {error}") from None
    return slots


def _obs_slot(slot: str, obs: pd.DataFrame) -> dict[str, FeatureSet]:
    if not len(obs.columns):
        return {}
    return {slot: FeatureSet.from_df(obs, strict=False, validate=False)}


def _modality_prefix(modality: str) -> str:
    """A modality's name as the start of slot names (``rna`` for ``rna:var``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", modality).strip("_") or "mod"
    return check_slot((cleaned if cleaned[0].isalpha() else f"mod_{cleaned}")[:56])


def _modality_field(modality: str, var_names: list[str], var_field: str | None) -> str:
    if modality.lower() in _GENE_MODALITIES:
        return var_field or guess_gene_field(var_names)
    if all(_ENSEMBL.match(name.strip()) for name in var_names):
        return ENSEMBL_FIELD
    return "Feature.name"


def _read_elem(anndata: Any) -> Any:
    """anndata's reader of one stored element (``anndata.io`` from 0.11 on)."""
    io = getattr(anndata, "io", None)
    reader = getattr(io, "read_elem", None)
    return reader if reader is not None else anndata.experimental.read_elem

