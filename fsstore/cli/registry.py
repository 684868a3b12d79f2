"""Commands on registries: ``registry add/ls/show`` and ``validate``."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import click

from fsstore.cli.common import (
    emit_json,
    feature_type_option,
    format_time,
    json_option,
    open_store,
    print_table,
    short,
    store_option,
)
from fsstore.featureset import FEATURE_ITYPE
from fsstore.readers import FORMATS, read_column, read_header_features
from fsstore.registry.catalog import FEATURE_REGISTRY, RegisterOutcome
from fsstore.registry.features import dtype_agrees, feature_dtypes
from fsstore.registry.lookup import Registry
from fsstore.registry.table import registry_key
from fsstore.store import Store
from fsstore.validation import find_registry

__all__ = ["registry", "validate"]

EXIT_NOT_VALID: Final = 4
"""``validate`` exits with this status when some values are not validated."""


@click.group()
def registry() -> None:
    """Reference tables of valid identifiers (genes, features), stored in the store."""


@registry.command("add")
@click.argument("source", metavar="FILE")
@click.option("--name", "-n", "registry_name", metavar="REGISTRY",
              help="Registry name, e.g. Gene.")
@click.option("--version", "version", metavar="LABEL",
              help="Version or source label, e.g. gencode-v48 (never reused for another table).")
@click.option("--organism", help="Organism, e.g. human.")
@click.option("--field", "-f", "fields", multiple=True, metavar="NAME[=COLUMN]",
              help="A field and the column holding it (name or 0-based position); repeat. "
              "Default: every column, named by the header.")
@click.option("--no-header", is_flag=True, help="The table has no header row.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format [default: guessed from the file name].")
@click.option("--features", "features", is_flag=True,
              help="Add FILE's columns, with their dtypes, to the built-in Feature registry.")
@click.option("--description", help="Free text kept with this version.")
@store_option
@json_option
def registry_add(source: str, registry_name: str | None, version: str | None,
                 organism: str | None, fields: tuple[str, ...], no_header: bool,
                 fmt: str | None, features: bool, description: str | None,
                 store_path: str | None, as_json: bool) -> None:
    """Register FILE (CSV, TSV or Parquet) as a version of a registry.

    \b
    Examples:
      fsstore registry add genes_homo_sapiens.csv.gz --no-header --name Gene \\
          --organism human --version gencode-v48 \\
          --field ensembl_gene_id=0 --field symbol=1 --field biotype=4
      fsstore registry add table.csv --features
    """
    store = open_store(store_path)
    if features:
        if registry_name not in (None, FEATURE_REGISTRY) or version or organism or fields:
            raise click.UsageError("--features fills the Feature registry from FILE's "
                                   "header; it takes no --name, --version, --organism or "
                                   "--field")
        outcome = store.register_features(read_header_features(source, fmt=fmt), description)
    else:
        if not registry_name or not version:
            raise click.UsageError("give the registry --name and a --version label "
                                   "(or --features for the Feature registry)")
        columns = _field_columns(fields)
        by_position = sorted(column for column in columns.values() if column.isdigit())
        if by_position and not no_header and not as_json:
            # A headerless table would lose its first record to the header unnoticed.
            click.echo(f"note: columns given by position ({', '.join(by_position)}) in a table "
                       "read with a header row; pass --no-header if its first row is a "
                       "record", err=True)
        outcome = store.register(source, name=registry_name, version=version,
                                 organism=organism, fields=columns or None,
                                 header=not no_header, fmt=fmt, description=description)
    _report_registration(outcome, as_json)


def _field_columns(fields: tuple[str, ...]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for item in fields:
        name, _, column = item.partition("=")
        if name in chosen:
            raise click.UsageError(f"field {name!r} is given twice")
        chosen[name] = column or name
    return chosen


def _report_registration(outcome: RegisterOutcome, as_json: bool) -> None:
    info = outcome.info
    if as_json:
        emit_json({"registry": info.registry, "organism": info.organism,
                   "version": info.version, "hash": info.hash, "fields": list(info.fields),
                   "n": info.n, "created": outcome.created, "recorded": outcome.recorded,
                   "rows_dropped": outcome.dropped})
        return
    if outcome.dropped:
        click.echo(f"left out {outcome.dropped:,} repeated or empty rows", err=True)
    what = (f"{info.registry}{f' ({info.organism})' if info.organism else ''} "
            f"{info.version}: {info.n:,} records, fields {', '.join(info.fields)}")
    if not outcome.recorded:
        click.echo(f"exists {what}; table {short(info.hash)} (already registered, "
                   "nothing written)")
    elif outcome.created:
        click.echo(f"registered {what}; table {short(info.hash)}")
    else:
        click.echo(f"registered {what}; table {short(info.hash)} (already stored under "
                   "another version; only the label was recorded)")


@registry.command("ls")
@click.option("--name", "-n", "registry_name", metavar="REGISTRY",
              help="Only versions of this registry.")
@store_option
@json_option
def registry_ls(registry_name: str | None, store_path: str | None, as_json: bool) -> None:
    """List registered registry versions, oldest first."""
    store = open_store(store_path)
    frame = store.registries()
    if registry_name:
        frame = frame[frame["registry"] == registry_name]
    records = frame.to_dict(orient="records")
    if as_json:
        emit_json(records)
        return
    rows = [(row["registry"], row["organism"], row["version"], f"{row['n']:,}",
             ", ".join(row["fields"]), short(row["hash"]), format_time(row["registered_at"]))
            for row in records]
    print_table(("registry", "organism", "version", "n", "fields", "table", "registered"),
                rows)


@registry.command("show")
@click.argument("registry_name", metavar="REGISTRY")
@click.option("--organism", help="Which organism, when several are registered.")
@click.option("--version", "--registry-version", "version", metavar="LABEL",
              help="Which version [default: the one registered last].")
@click.option("--head", "head", type=click.IntRange(min=0), metavar="N",
              help="Records to list (0 for none) [default: 10].")
@click.option("--all", "show_all", is_flag=True, help="List every record.")
@store_option
@json_option
def registry_show(registry_name: str, organism: str | None, version: str | None,
                  head: int | None, show_all: bool, store_path: str | None,
                  as_json: bool) -> None:
    """Show a registry version: where it is stored, its fields, and its first records."""
    if head is not None and show_all:
        raise click.UsageError("--head lists the first N records and --all every record; "
                               "give one of them")
    head = 10 if head is None else head
    store = open_store(store_path)
    found = store.registry(registry_name, organism=organism, version=version)
    # Records are stored in canonical (encoding) order; people read them by identifier.
    keys = found.identifier_fields() or list(found.fields)
    frame = found.to_pandas()
    frame = frame[keys + [f for f in found.fields if f not in keys]].sort_values(keys[0])
    if not show_all:
        frame = frame.head(head)
    document = _registry_document(store, found)
    if as_json:
        document["records"] = frame.to_dict(orient="records")
        emit_json(document)
        return
    for key in ("registry", "organism", "version", "n", "hash", "table", "description"):
        value = document[key]
        click.echo(f"{key:<12}{'-' if value is None else value}")
    print_table(("field", "values", "distinct", "in several records", "missing"),
                [(item["field"], f"{item['values']:,}", f"{item['distinct']:,}",
                  f"{item['in_several_records']:,}", f"{item['missing']:,}")
                 for item in document["fields"]])
    if len(frame):
        click.echo(f"records ({len(frame):,} of {found.n:,}):")
        print_table(list(frame.columns), list(frame.itertuples(index=False, name=None)))


def _registry_document(store: Store, found: Registry) -> dict[str, Any]:
    fields = []
    for field in found.fields:
        counts: Counter[str] = found.counts(field)
        fields.append({"field": field, "values": sum(counts.values()),
                       "distinct": len(counts),
                       "in_several_records": sum(1 for c in counts.values() if c > 1),
                       "missing": found.n - sum(counts.values())})
    info = found.info
    return {"registry": found.name, "organism": found.organism, "version": found.version,
            "n": found.n, "hash": found.hash,
            "table": store.where(registry_key(found.hash)), "fields": fields,
            "description": info.description if info else None}


@click.command()
@click.argument("source", metavar="FILE")
@click.option("--field", "--itype", "field", required=True, metavar="REGISTRY.FIELD",
              help="The field to validate against, e.g. Gene.ensembl_gene_id.")
@click.option("--column", "-c", metavar="COLUMN",
              help="Column holding the values: a name, or a 0-based position "
                   "(name:N or pos:N where a column is named by a digit).")
@click.option("--header", "from_header", is_flag=True,
              help="Validate the table's columns (names and dtypes) against Feature.")
@click.option("--no-header", is_flag=True, help="The table has no header row.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format [default: guessed from the file name].")
@click.option("--organism", help="Registry organism, when several are registered.")
@click.option("--registry-version", "version", metavar="LABEL",
              help="Registry version [default: the one registered last].")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=0),
              help="Examples to print of each kind (0: counts only).")
@feature_type_option
@store_option
@json_option
def validate(source: str, field: str, column: str | None, from_header: bool, no_header: bool,
             fmt: str | None, organism: str | None, version: str | None, limit: int,
             feature_type: str | None, store_path: str | None, as_json: bool) -> None:
    """Check the values of FILE against a registry field, with suggestions; store nothing.

    Exits with status 0 when every value validates, 4 when some do not.

    \b
    Example:
      fsstore validate features.tsv.gz --field Gene.ensembl_gene_id
    """
    if from_header and field != FEATURE_ITYPE:
        raise click.UsageError(f"--header validates column names: use --field {FEATURE_ITYPE}")
    store = open_store(store_path)
    found = find_registry(field, store, organism, version, required=True)
    assert found is not None  # required=True raises instead
    clashes: list[dict[str, str]] = []
    if from_header:
        features = read_header_features(source, fmt=fmt)
        inspection = found.inspect([feature.name for feature in features], field)
        registered = feature_dtypes(found)
        clashes = [{"feature": f.name, "dtype": str(f.dtype), "registered": registered[f.name]}
                   for f in features if f.name in registered and f.dtype
                   and not dtype_agrees(registered[f.name], f.dtype)]
    else:
        read = read_column(source, fmt=fmt, column=column, header=not no_header,
                           feature_type=feature_type, field=field)
        if read.note:
            click.echo(read.note, err=True)
        inspection = found.inspect(read.values, field)
    if as_json:
        document = inspection.to_dict()
        document["dtype_mismatches"] = clashes
        emit_json(document)
    else:
        click.echo(inspection.summary(limit))
        for clash in clashes:
            click.echo(f"dtype mismatch: column {clash['feature']!r} holds {clash['dtype']}, "
                       f"registered as {clash['registered']}")
    if not inspection.all_valid or clashes:
        raise click.exceptions.Exit(EXIT_NOT_VALID)


def describe_report(store: Store, report: Any, itype: str, asked: bool = True) -> list[str]:
    """Lines for standard error about what validation changed in ``fsstore add``.

    ``asked`` is False when the user turned validation off (nothing to say then). A set
    that was not validated is pointed out only in a store that has registries: there, a
    missing one is likely a mistake (a misspelt field); elsewhere it is the normal case.
    """
    if report is None or not asked:
        return []
    lines = []
    if report.validated_against is None:
        registries = store.registries()
        if not registries.empty:
            registry_name = itype.rpartition(".")[0]
            lines.append(f"not validated: this store has no {registry_name} registry")
        return lines
    if report.dropped:
        lines.append(f"dropped {len(report.dropped):,} values not in {itype} of "
                     f"{report.validated_against} (e.g. {', '.join(report.dropped[:3])})")
    if report.standardized:
        shown = ", ".join(f"{old} -> {new}" for old, new in report.standardized[:3])
        lines.append(f"standardized {len(report.standardized):,} values (e.g. {shown})")
    if report.multiple:
        lines.append(f"{len(report.multiple):,} members match several records of "
                     f"{report.validated_against} (e.g. {', '.join(report.multiple[:3])})")
    return lines
