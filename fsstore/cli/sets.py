"""Commands on feature sets: init, add, ls, show, log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fsstore.backend import is_url, open_backend
from fsstore.cli.common import (
    emit_json,
    format_time,
    json_option,
    open_store,
    print_table,
    short,
    store_option,
)
from fsstore.featureset import FEATURE_ITYPE, FeatureSet
from fsstore.manifest import manifest_key
from fsstore.readers import FORMATS, read_header_features, read_values
from fsstore.store import DEFAULT_FOLDER, STORE_FILE, SaveOutcome, Store

__all__ = ["add", "init", "log_command", "ls", "show"]


@click.command()
@click.argument("path", required=False, default=DEFAULT_FOLDER, metavar="[PATH]")
@click.option("--shared", is_flag=True,
              help="Make the store group-writable for a team (setgid folders).")
@json_option
def init(path: str, shared: bool, as_json: bool) -> None:
    """Create a store at PATH (default: ./.fsstore), or report the one already there."""
    existed = (open_backend(path).exists(STORE_FILE) if is_url(path)
               else (Path(path) / STORE_FILE).is_file())
    store = Store.init(path, shared=shared)
    if as_json:
        emit_json({"path": store.location, "created": not existed,
                   "store_id": store.store_id, "shared": bool(store.config.get("shared"))})
        return
    verb = "Reinitialized existing" if existed else "Initialized empty"
    click.echo(f"{verb} fsstore store in {store.location}")


@click.command()
@click.argument("source", metavar="FILE")
@click.option("--column", "-c", metavar="COLUMN",
              help="Column holding the members: a name, or a 0-based position.")
@click.option("--header", "from_header", is_flag=True,
              help="Store the table's columns (names and dtypes) as a set of Features.")
@click.option("--no-header", is_flag=True,
              help="The table has no header row; refer to columns by 0-based position.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format [default: guessed from the file name].")
@click.option("--name", "-n", help="Name to point at the set (moves if it already exists).")
@click.option("--field", "--itype", "field", default=FEATURE_ITYPE, show_default=True,
              metavar="REGISTRY.FIELD",
              help="What the members are, e.g. Gene.ensembl_gene_id.")
@click.option("--type", "set_type", metavar="DTYPE",
              help="Dtype of the measured values (e.g. float); for Feature.name, of each "
              "feature.")
@click.option("--ordered", is_flag=True, help="Member order is part of the set's identity.")
@click.option("--lenient", is_flag=True,
              help="Drop missing values and report them instead of failing.")
@click.option("--description", help="Free text kept with the name (not part of the hash).")
@store_option
@json_option
def add(source: str, column: str | None, from_header: bool, no_header: bool, fmt: str | None,
        name: str | None, field: str, set_type: str | None, ordered: bool, lenient: bool,
        description: str | None, store_path: str | None, as_json: bool) -> None:
    """Add a feature set from FILE (CSV, TSV, Parquet, 10x features.tsv, list, or - for stdin).

    \b
    Examples:
      fsstore add features.tsv.gz --field Gene.ensembl_gene_id --name GRCh38-2020-A
      fsstore add table.csv --header --name my-table-columns
      cut -f1 genes.tsv | fsstore add - --field Gene.symbol --name markers
    """
    store = open_store(store_path)
    if from_header:
        if column is not None:
            raise click.UsageError("--header stores all columns; it cannot be used with --column")
        features = read_header_features(source, fmt=fmt)
        feature_set = FeatureSet(features, None, name, ordered=ordered, description=description)
    else:
        values = read_values(source, fmt=fmt, column=column, header=not no_header)
        feature_set = FeatureSet.from_values(values, field=field, type=set_type, name=name,
                                             ordered=ordered, strict=not lenient,
                                             description=description)
    outcome = store.put(feature_set)
    _report_add(store, outcome, as_json)


def _report_add(store: Store, outcome: SaveOutcome, as_json: bool) -> None:
    feature_set = outcome.feature_set
    report = feature_set.report
    if as_json:
        document = _summary(store, feature_set)
        document.update(created=outcome.created, recorded=outcome.recorded,
                        previous=outcome.previous)
        if report is not None:
            document["input"] = {"values": report.n_input, "missing_dropped": report.missing,
                                 "repeated": list(report.duplicates)}
        emit_json(document)
        return
    if report is not None and report.missing:
        click.echo(f"dropped {report.missing} missing values of {report.n_input}", err=True)
    if report is not None and report.duplicates:
        click.echo(f"merged {len(report.duplicates)} repeated values "
                   f"(e.g. {', '.join(report.duplicates[:3])})", err=True)
    label = f' "{feature_set.name}"' if feature_set.name else ""
    what = f"{feature_set.n:,} members of {feature_set.itype}"
    if outcome.created:
        click.echo(f"stored {short(feature_set.hash)}{label}: {what}")
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
    rows = [(short(row["hash"]), ", ".join(row["names"]) or None, row["itype"],
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
