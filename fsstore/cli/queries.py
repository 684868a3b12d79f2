"""Commands that ask questions of the stored sets: find, similar, diff."""

from __future__ import annotations

import os
from typing import Any

import click

from fsstore.algebra import diff
from fsstore.cli.common import (
    emit_json,
    feature_type_option,
    json_option,
    open_store,
    print_table,
    short,
    store_option,
)
from fsstore.members import rebuild
from fsstore.queries import find_sets, similar
from fsstore.readers import FORMATS, read_column

__all__ = ["diff_command", "find", "similar_command"]


@click.command()
@click.option("--member", "-m", help="Sets holding this member (CD8A, ENSG00000153563).")
@click.option("--ignore-case", "-i", is_flag=True, help="Match --member ignoring case.")
@click.option("--name", help="Sets a name matching this glob points at (GRCh*).")
@click.option("--field", "--itype", "itype", metavar="REGISTRY.FIELD",
              help="Only sets of this itype.")
@click.option("--registry", help="Only sets of this registry, e.g. Gene.")
@click.option("--rebuild", "rebuild_index", is_flag=True,
              help="First rebuild the member index from the manifests.")
@store_option
@json_option
def find(member: str | None, ignore_case: bool, name: str | None, itype: str | None,
         registry: str | None, rebuild_index: bool, store_path: str | None,
         as_json: bool) -> None:
    """Find stored sets by member, name pattern, itype or registry.

    \b
    Examples:
      fsstore find --member CD8A
      fsstore find --member cd8a -i --registry Gene
      fsstore find --name 'GRCh*'
    """
    if member is not None and not member.strip():
        raise click.BadParameter("give a member to look for, not an empty string",
                                 param_hint="--member")
    store = open_store(store_path)
    if rebuild_index:
        rebuild(store)
    found = find_sets(store, name=name, itype=itype, registry=registry, member=member,
                      ignore_case=ignore_case)
    if as_json:
        emit_json(found.to_dict(orient="records"))
        return
    columns = ["hash", "names", "itype", "n"] + (["member"] if member else [])
    rows = [[short(row["hash"]), ", ".join(row["names"]) or None, row["itype"],
             f"{row['n']:,}"] + ([row["member"]] if member else [])
            for row in found.to_dict(orient="records")]
    print_table(columns, rows)


@click.command("similar")
@click.argument("query", metavar="SET|FILE|-")
@click.option("--min-jaccard", "-j", type=click.FloatRange(0, 1),
              help="Keep sets with Jaccard index at or above this [default: 0.5 when no "
              "threshold is given].")
@click.option("--min-containment", "-c", type=click.FloatRange(0, 1),
              help="Keep sets holding at least this fraction of the query's members.")
@click.option("--field", "--itype", "itype", metavar="REGISTRY.FIELD",
              help="Only sets of this itype [default: the query set's, for a stored set].")
@click.option("--column", metavar="COLUMN", help="For a FILE query: the column of members.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="For a FILE query: its format [default: guessed from the name].")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many sets.")
@feature_type_option
@store_option
@json_option
def similar_command(query: str, min_jaccard: float | None, min_containment: float | None,
                    itype: str | None, column: str | None, fmt: str | None,
                    limit: int | None, feature_type: str | None, store_path: str | None,
                    as_json: bool) -> None:
    """Stored sets overlapping a query: a stored set (name or hash prefix), a file, or -.

    Jaccard is |Q & S| / |Q | S|; containment |Q & S| / |Q|. Sets are ranked best first.

    \b
    Examples:
      fsstore similar GRCh38-2020-A --min-jaccard 0.9
      fsstore similar my_genes.txt --min-containment 0.8
      cut -f1 features.tsv | fsstore similar - -j 0.01
    """
    store = open_store(store_path)
    source: Any = query
    if query == "-" or os.path.isfile(query):
        read = read_column(query, fmt=fmt, column=column, feature_type=feature_type,
                           field=itype)
        if read.note:
            click.echo(read.note, err=True)
        source = [value for value in read.values if value is not None and str(value).strip()]
    found = similar(store, source, min_jaccard=min_jaccard, min_containment=min_containment,
                    itype=itype, limit=limit)
    if as_json:
        emit_json(found.to_dict(orient="records"))
        return
    print_table(("hash", "names", "itype", "n", "shared", "jaccard", "containment"),
                [(short(row["hash"]), ", ".join(row["names"]) or None, row["itype"],
                  f"{row['n']:,}", f"{row['shared']:,}", f"{row['jaccard']:.4f}",
                  f"{row['containment']:.4f}") for row in found.to_dict(orient="records")])


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--summary", is_flag=True, help="Print only the counts.")
@store_option
@json_option
def diff_command(a: str, b: str, summary: bool, store_path: str | None,
                 as_json: bool) -> None:
    """Members added (+) and removed (-) going from set A to set B, and changed dtypes (~)."""
    store = open_store(store_path)
    first, second = store.get(a), store.get(b)
    changes = diff(first, second)
    if as_json:
        document: dict[str, Any] = {"a": first.hash, "b": second.hash}
        if summary:
            document.update(added=len(changes.added), removed=len(changes.removed),
                            changed=len(changes.changed))
        else:
            document.update(added=list(changes.added), removed=list(changes.removed),
                            changed=[{"name": name, "a": old, "b": new}
                                     for name, old, new in changes.changed])
        document["common"] = changes.common
        document["order"] = changes.order
        emit_json(document)
        return
    if not summary:
        lines = [f"+ {name}" for name in changes.added]
        lines += [f"- {name}" for name in changes.removed]
        lines += [f"~ {name}: {old} -> {new}" for name, old, new in changes.changed]
        if lines:
            click.echo("\n".join(lines))
    click.echo(f"{short(first.hash)} -> {short(second.hash)}: {len(changes.added):,} added, "
               f"{len(changes.removed):,} removed, {len(changes.changed):,} changed, "
               f"{changes.common:,} in common"
               + (f"; order: {changes.order}" if changes.order else ""))
