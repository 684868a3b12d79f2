"""Commands on feature sets: init, add, ls, show, log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fsstore.backend import is_url, open_backend
from fsstore.canonical import parse_itype
from fsstore.cli.common import (
    emit_json,
    feature_type_option,
    format_time,
    json_option,
    open_store,
    plural,
    print_table,
    refuse_empty_store,
    short,
    store_option,
)
from fsstore.cli.registry import describe_report
from fsstore.featureset import FEATURE_ITYPE, FeatureSet
from fsstore.manifest import manifest_key
from fsstore.readers import FORMATS, read_column, read_header
from fsstore.store import DEFAULT_FOLDER, STORE_FILE, SaveOutcome, Store

__all__ = ["add", "init", "log_command", "ls", "show"]


@click.command()
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--shared", is_flag=True,
              help="Make the store group-writable for a team (setgid folders).")
@click.option("--store", "store_path", metavar="PATH",
              help="Where to create the store, like PATH (PATH wins when both are given).")
@json_option
def init(path: str | None, shared: bool, store_path: str | None, as_json: bool) -> None:
    """Create a store at PATH (default: ./.fsstore), or report the one already there.

    FSSTORE_DIR is not read here: it names a store to use, and creating one is explicit.
    """
    refuse_empty_store(store_path)
    path = path or store_path or DEFAULT_FOLDER
    existed = (open_backend(path).exists(STORE_FILE) if is_url(path)
               else (Path(path) / STORE_FILE).is_file())
    was_shared = existed and shared and bool(Store(path).config.get("shared"))
    store = Store.init(path, shared=shared)
    now_shared = existed and shared and not was_shared
    if as_json:
        emit_json({"path": store.location, "created": not existed,
                   "store_id": store.store_id, "shared": bool(store.config.get("shared")),
                   "made_shared": now_shared})
        return
    verb = "Reinitialized existing" if existed else "Initialized empty"
    note = " (now group-shared: folders setgid and group-writable)" if now_shared else ""
    click.echo(f"{verb} fsstore store in {store.location}{note}")


@click.command()
@click.argument("source", metavar="FILE")
@click.option("--column", "-c", metavar="COLUMN",
              help="Column holding the members: a name, or a 0-based position "
                   "(name:N or pos:N where a column is named by a digit).")
@click.option("--header", "from_header", is_flag=True,
              help="Store the table's columns (names and dtypes) as a set of Features.")
@click.option("--no-header", is_flag=True,
              help="The table has no header row; refer to columns by 0-based position.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format [default: guessed from the file name and content].")
@click.option("--name", "-n", help="Name to point at the set (moves if it already exists).")
@click.option("--field", "--itype", "field", default=FEATURE_ITYPE, show_default=True,
              metavar="REGISTRY.FIELD",
              help="What the members are, e.g. Gene.ensembl_gene_id.")
@click.option("--type", "set_type", metavar="DTYPE",
              help="Dtype of the measured values (e.g. float); for Feature.name, of each "
              "feature.")
@click.option("--ordered", is_flag=True, help="Member order is part of the set's identity.")
@click.option("--strict/--lenient", "strict", default=True,
              help="Fail on missing values and values not in the registry [default], or "
              "drop and report them.")
@click.option("--standardize", is_flag=True,
              help="Replace values with one unambiguous suggestion (case, version suffix, "
              "another field, synonym) before validating.")
@click.option("--organism", help="Registry organism, when several are registered.")
@click.option("--registry-version", "registry_version", metavar="LABEL",
              help="Registry version to validate against [default: the one registered last].")
@click.option("--no-validate", is_flag=True,
              help="Do not validate against the store's registry.")
@click.option("--description", help="Free text kept with the name (not part of the hash).")
@feature_type_option
@store_option
@json_option
def add(source: str, column: str | None, from_header: bool, no_header: bool, fmt: str | None,
        name: str | None, field: str, set_type: str | None, ordered: bool, strict: bool,
        standardize: bool, organism: str | None, registry_version: str | None,
        no_validate: bool, description: str | None, feature_type: str | None,
        store_path: str | None, as_json: bool) -> None:
    """Add a feature set from FILE (CSV, TSV, Parquet, 10x features.tsv, list, or - for stdin).

    \b
    Values are validated against the field's registry when the store has one (see
    `fsstore registry`); --header columns against the Feature registry.

    \b
    Examples:
      fsstore add features.tsv.gz --field Gene.ensembl_gene_id --name GRCh38-2020-A
      fsstore add table.csv --header --name my-table-columns
      cut -f1 genes.tsv | fsstore add - --field Gene.symbol --name markers
    """
    _check_add_options(from_header, no_header, column, field, set_type, no_validate,
                       organism, registry_version)
    store = open_store(store_path)
    if from_header and parse_itype(field)[0] == "Feature":
        header = read_header(source, fmt=fmt)
        features = header.features
        for feature in features:
            if feature.name in header.empty:
                click.echo(f"note: column {feature.name!r} of {source} holds no values; "
                           f"recorded as {feature.dtype}, what pandas reads for an empty "
                           "column", err=True)
        if no_validate:
            feature_set = FeatureSet(features, None, name, ordered=ordered,
                                     description=description)
        else:
            feature_set = FeatureSet.from_features(features, name, ordered=ordered,
                                                   description=description, store=store,
                                                   strict=strict)
    else:
        if from_header:
            # The column names are the members, e.g. the genes heading a counts matrix.
            values: list[Any] = [feature.name for feature in
                                 read_header(source, fmt=fmt, dtypes=False).features]
        else:
            read = read_column(source, fmt=fmt, column=column, header=not no_header,
                               feature_type=feature_type, field=field)
            if read.chosen and read.name and not as_json:
                click.echo(f"reading column {read.name!r} of {source} (its only column; pass "
                           "--no-header if that first line is a value)", err=True)
            if read.note:
                click.echo(read.note, err=True)
            values = read.values
        feature_set = FeatureSet.from_values(
            values, field=field, type=set_type, name=name, ordered=ordered, strict=strict,
            description=description, store=store, organism=organism,
            version=registry_version, standardize=standardize, validate=not no_validate)
    outcome = store.put(feature_set)
    _report_add(store, outcome, as_json, validated=not no_validate)


def _check_add_options(from_header: bool, no_header: bool, column: str | None, field: str,
                       set_type: str | None, no_validate: bool, organism: str | None,
                       registry_version: str | None) -> None:
    if no_validate and (organism is not None or registry_version is not None):
        raise click.UsageError(f"{'--organism' if organism is not None else '--registry-version'}"
                               " chooses the registry to validate against; it cannot be used "
                               "with --no-validate")
    if from_header and no_header:
        raise click.UsageError("--header reads the header row; it cannot be used with "
                               "--no-header")
    if from_header and column is not None:
        raise click.UsageError("--header stores all columns; it cannot be used with --column")
    if from_header and set_type is not None and parse_itype(field)[0] == "Feature":
        raise click.UsageError("--header infers each column's dtype from the data; --type "
                               "cannot be used with it")


def _report_add(store: Store, outcome: SaveOutcome, as_json: bool,
                validated: bool = True) -> None:
    feature_set = outcome.feature_set
    report = feature_set.report
    if as_json:
        document = _summary(store, feature_set)
        document.update(created=outcome.created, recorded=outcome.recorded,
                        previous=outcome.previous)
        if report is not None:
            document["input"] = {"values": report.n_input, "missing_dropped": report.missing,
                                 "repeated": list(report.duplicates),
                                 "invalid_dropped": list(report.dropped),
                                 "multiple_records": list(report.multiple),
                                 "standardized": [list(pair) for pair in report.standardized],
                                 "validated_against": report.validated_against,
                                 "stripped": list(report.stripped)}
        emit_json(document)
        return
    for line in describe_report(store, report, feature_set.itype, validated):
        click.echo(line, err=True)
    if report is not None and report.missing:
        click.echo(f"dropped {plural(report.missing, 'missing value')} of {report.n_input:,}",
                   err=True)
    if report is not None and report.duplicates:
        click.echo(f"merged {plural(len(report.duplicates), 'repeated value')} "
                   f"(e.g. {', '.join(report.duplicates[:3])})", err=True)
    label = f' "{feature_set.name}"' if feature_set.name else ""
    what = f"{plural(feature_set.n, 'member')} of {feature_set.itype}"
    if outcome.created:
        click.echo(f"stored {short(feature_set.hash)}{label}: {what}")
    elif outcome.recorded:
        click.echo(f"exists {short(feature_set.hash)}{label}: {what} "
                   "(already stored; recorded in the index)")
    else:
        click.echo(f"exists {short(feature_set.hash)}{label}: {what} "
                   "(already stored, nothing written)")
    if outcome.previous:
        click.echo(f'moved name "{feature_set.name}" from {short(outcome.previous)} '
                   f"to {short(feature_set.hash)}")


@click.command()
@click.option("--registry", help="Only sets of this registry, e.g. Gene.")
@click.option("--field", "--itype", "itype", help="Only sets of this itype.")
@click.option("--named", is_flag=True, help="Only sets a name currently points at.")
@store_option
@json_option
def ls(registry: str | None, itype: str | None, named: bool, store_path: str | None,
       as_json: bool) -> None:
    """List the stored feature sets, oldest first."""
    if itype:
        parse_itype(itype)
    store = open_store(store_path)
    sets = store.sets()
    if registry:
        sets = sets[sets["registry"] == registry]
    if itype:
        sets = sets[sets["itype"] == itype]
    if named:
        sets = sets[sets["names"].map(len) > 0]
    if as_json:
        emit_json(sets.to_dict(orient="records"))
        return
    rows = [(short(row["hash"]), _names_cell(row["names"]), row["itype"],
             f"{row['n']:,}", row["type"], format_time(row["created_at"]))
            for row in sets.to_dict(orient="records")]
    print_table(("hash", "names", "itype", "n", "type", "created"), rows)


@click.command()
@click.argument("ref")
@click.option("--members/--no-members", default=True, show_default=True,
              help="List the members after the summary.")
@store_option
@json_option
def show(ref: str, members: bool, store_path: str | None, as_json: bool) -> None:
    """Show a set by name or hash prefix (6+ characters), with its members."""
    store = open_store(store_path)
    feature_set = store.get(ref)
    document = _summary(store, feature_set)
    if as_json:
        if members:
            document["members"] = feature_set.members.to_dict(orient="records")
        emit_json(document)
        return
    labels = {"uid": "uid", "hash": "hash", "name": "name", "itype": "itype", "type": "type",
              "ordered": "ordered", "n": "n", "created_at": "created", "created_by": "by",
              "updated_at": "updated", "description": "description", "manifest": "manifest"}
    for key, label in labels.items():
        value = document.get(key)
        if key.endswith("_at"):
            value = format_time(feature_set.created_at if key == "created_at"
                                else feature_set.updated_at)
        click.echo(f"{label:<12}{'-' if value is None else value}")
    if members:
        click.echo("members:")
        pairs = feature_set.canonical.members
        lines = [f"{n}\t{d}" if d else n for n, d in pairs]
        click.echo("\n".join(lines))


@click.command("log")
@click.argument("name")
@store_option
@json_option
def log_command(name: str, store_path: str | None, as_json: bool) -> None:
    """Show where NAME has pointed over time, oldest first."""
    store = open_store(store_path)
    history = store.history(name)
    if as_json:
        emit_json(history.to_dict(orient="records"))
        return
    rows = [(row["seq"], format_time(row["time"]), row["user"], short(row["hash"]),
             f"{row['n']:,}", row["itype"]) for row in history.to_dict(orient="records")]
    print_table(("seq", "time", "user", "hash", "n", "itype"), rows)


def _names_cell(names: list[str], shown: int = 3) -> str | None:
    if not names:
        return None
    extra = f" (+{len(names) - shown} more)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + extra


def _summary(store: Store, feature_set: FeatureSet) -> dict[str, Any]:
    return {
        "uid": feature_set.uid,
        "hash": feature_set.hash,
        "name": feature_set.name,
        "itype": feature_set.itype,
        "registry": feature_set.registry,
        "field": feature_set.field,
        "type": feature_set.type,
        "ordered": feature_set.ordered,
        "n": feature_set.n,
        "created_at": feature_set.created_at,
        "created_by": feature_set.created_by,
        "updated_at": feature_set.updated_at,
        "description": feature_set.description,
        "manifest": store.where(manifest_key(feature_set.hash)),
    }
