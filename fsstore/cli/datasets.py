"""Commands on datasets: link, datasets, export."""

from __future__ import annotations

import contextlib
import glob
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from fsstore.cli.common import (
    emit_json,
    exit_code_of,
    format_time,
    json_option,
    open_store,
    plural,
    print_table,
    short,
    store_option,
)
from fsstore.dataset import DATASET_FORMATS, detect_dataset_format
from fsstore.errors import (
    CorruptObjectError,
    FsstoreError,
    OutputExistsError,
    StorageError,
    UnsupportedFileError,
)
from fsstore.links import (
    LinkOutcome,
    SlotChange,
    dataset_file_key,
    dataset_history,
    link,
    open_dataset,
    resolve_dataset,
    shared_sets,
    slot_set,
)
from fsstore.queries import datasets_measuring
from fsstore.store import Store

__all__ = ["datasets_command", "export", "link_command"]

_GLOB_CHARACTERS = frozenset("*?[")


def expand_sources(sources: tuple[str, ...]) -> list[str]:
    """Files named by paths, folders (searched recursively) and quoted glob patterns."""
    found: list[str] = []
    for source in sources:
        if os.path.isdir(source):
            files = sorted(_dataset_files(source))
            if not files:
                raise UnsupportedFileError(
                    f"no dataset files under {source} (fsstore links .csv, .tsv, .parquet, "
                    ".h5ad, .h5mu and 10x features.tsv files, also compressed)")
            found += files
        elif not os.path.exists(source) and _GLOB_CHARACTERS & set(source):
            matches = sorted(path for path in glob.glob(source, recursive=True)
                             if os.path.isfile(path))
            if not matches:
                raise UnsupportedFileError(f"no file matches {source!r}")
            found += matches
        else:
            found.append(source)
    return list(dict.fromkeys(found))


def _dataset_files(folder: str) -> Iterator[str]:
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in files:
            path = os.path.join(parent, name)
            try:
                detect_dataset_format(path)
            except UnsupportedFileError:
                continue
            yield path


@click.command("link")
@click.argument("sources", nargs=-1, required=True, metavar="FILE|FOLDER|GLOB...")
@click.option("--slot", "slots", multiple=True, metavar="SLOT=SET",
              help="Put a stored set (name or hash prefix) in a slot, replacing what it "
              "held; repeat for several slots.")
@click.option("--no-derive", is_flag=True,
              help="Link only the --slot sets; derive no sets from the files.")
@click.option("--replace", is_flag=True,
              help="Derived sets replace what their slots hold (default: fill empty slots).")
@click.option("--copy", is_flag=True, help="Also keep the files' bytes in the store.")
@click.option("--name", "-n", help="A name for the dataset (one file only).")
@click.option("--format", "fmt", type=click.Choice(DATASET_FORMATS),
              help="File format [default: guessed from each file name].")
@click.option("--var-field", metavar="REGISTRY.FIELD",
              help="itype of var members [default: Gene.ensembl_gene_id when all are "
              "Ensembl ids, else Gene.symbol].")
@store_option
@json_option
def link_command(sources: tuple[str, ...], slots: tuple[str, ...], no_derive: bool,
                 replace: bool, copy: bool, name: str | None, fmt: str | None,
                 var_field: str | None, store_path: str | None, as_json: bool) -> None:
    """Register datasets and link their slots to feature sets.

    \b
    Each file's identity is the BLAKE3 of its bytes. Its sets are derived by slot:
    `columns` for CSV/TSV/Parquet, `var` for 10x features.tsv, `var` and `obs` for .h5ad,
    `obs` and per modality `rna:var`, `rna:obs` (and so on) for MuData .h5mu.
    Adding a file again records nothing; a changed file is a new dataset.

    \b
    Examples:
      fsstore link data/tables/            every dataset file below the folder
      fsstore link 'tabular/csv/**/*.csv'  a glob (quoted: fsstore expands it)
      fsstore link pbmc.h5ad --copy --name pbmc
      fsstore link pbmc.h5ad --slot var=GRCh38-2020-A
    """
    store = open_store(store_path)
    files = expand_sources(sources)
    if name is not None and len(files) > 1:
        raise click.UsageError(f"--name names one dataset, but {len(files)} files were given")
    explicit = dict(_parse_slot(value) for value in slots)
    options: dict[str, Any] = {"slots": explicit, "copy": copy, "fmt": fmt,
                               "var_field": var_field, "derive": not no_derive,
                               "replace": replace, "name": name}
    if len(files) == 1:
        outcome = link(store, files[0], **options)
        _report_one(outcome, as_json)
        return
    outcomes, failures = _link_many(store, files, options, quiet=as_json)
    if as_json:
        emit_json({"datasets": [_outcome_document(outcome) for outcome in outcomes],
                   "failed": [{"path": path, "error": str(error)} for path, error in failures]})
    else:
        _report_many(outcomes, failures)
    if failures:
        raise click.exceptions.Exit(max(exit_code_of(error) for _, error in failures))


def _parse_slot(value: str) -> tuple[str, str]:
    slot, separator, ref = value.partition("=")
    if not separator or not slot or not ref:
        raise click.BadParameter(f"{value!r} is not SLOT=SET (for example var=GRCh38-2020-A)",
                                 param_hint="--slot")
    return slot, ref


def _link_many(store: Store, files: list[str], options: dict[str, Any], quiet: bool
               ) -> tuple[list[LinkOutcome], list[tuple[str, FsstoreError]]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    outcomes: list[LinkOutcome] = []
    failures: list[tuple[str, FsstoreError]] = []
    progress = Progress(TextColumn("linking"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(),
                        TextColumn("{task.fields[current]}"),
                        console=Console(stderr=True), disable=quiet)
    with progress:
        task = progress.add_task("link", total=len(files), current="")
        for path in files:
            progress.update(task, current=Path(path).name)
            try:
                outcomes.append(link(store, path, **options))
            except FsstoreError as error:
                failures.append((path, error))
            progress.advance(task)
    return outcomes, failures


def _outcome_document(outcome: LinkOutcome) -> dict[str, Any]:
    return {"dataset": outcome.dataset, "uid": outcome.uid, "path": outcome.path,
            "format": outcome.format, "size": outcome.size, "new": outcome.new,
            "recorded": outcome.recorded, "stored": outcome.stored,
            "notes": list(outcome.notes),
            "slots": [{"slot": change.slot, "hash": change.hash, "action": change.action,
                       "previous": change.previous, "holds": _held(change)}
                      for change in outcome.slots]}


def _held(change: SlotChange) -> str:
    """The set the slot holds after linking: a kept slot holds its earlier set."""
    return change.previous if change.action == "kept" and change.previous else change.hash


def _report_one(outcome: LinkOutcome, as_json: bool) -> None:
    if as_json:
        emit_json(_outcome_document(outcome))
        return
    state = "new dataset" if outcome.new else "known dataset"
    if not outcome.recorded:
        state += ", nothing to record"
    stored = ", bytes stored" if outcome.stored else ""
    click.echo(f"{short(outcome.dataset)} {outcome.path or outcome.format} "
               f"({outcome.size:,} bytes, {state}{stored})")
    for change in outcome.slots:
        if change.action == "kept":
            note = (f" (the set derived from the file, {short(change.hash)}, was not applied; "
                    "--replace applies it)")
        elif change.previous and change.previous != change.hash:
            note = f" (was {short(change.previous)})"
        else:
            note = ""
        click.echo(f"  {change.slot:<10} {short(_held(change))} {change.action}{note}")
    for note in outcome.notes:
        click.echo(f"note: {note}", err=True)


def _report_many(outcomes: list[LinkOutcome],
                 failures: list[tuple[str, FsstoreError]]) -> None:
    new = sum(outcome.new for outcome in outcomes)
    recorded = sum(outcome.recorded for outcome in outcomes)
    linked = sum(change.action in ("linked", "replaced") for outcome in outcomes
                 for change in outcome.slots)
    sets = {change.hash for outcome in outcomes for change in outcome.slots}
    click.echo(f"{len(outcomes)} datasets: {new} new, {recorded} with changes recorded, "
               f"{len(outcomes) - recorded} unchanged; {linked} slots linked to "
               f"{len(sets)} distinct sets")
    for outcome in outcomes:
        for note in outcome.notes:
            click.echo(f"note: {outcome.path}: {note}", err=True)
    for path, error in failures:
        click.echo(f"failed: {path}: {error}", err=True)


@click.command("datasets")
@click.argument("ref", required=False)
@click.option("--slot", help="With REF: list the members of this slot's set.")
@click.option("--history", is_flag=True, help="With REF: every link event of the dataset.")
@click.option("--set", "set_ref", metavar="SET", help="Only datasets whose slots hold SET now.")
@click.option("--member", help="Only datasets whose slots hold a set with this member.")
@click.option("--ignore-case", "-i", is_flag=True, help="Match --member ignoring case.")
@click.option("--shared", is_flag=True,
              help="List the sets held by slots of several datasets, with those datasets.")
@click.option("--min-datasets", type=click.IntRange(min=1), default=2, show_default=True,
              help="With --shared: how many datasets must share a set.")
@store_option
@json_option
def datasets_command(ref: str | None, slot: str | None, history: bool, set_ref: str | None,
                     member: str | None, ignore_case: bool, shared: bool, min_datasets: int,
                     store_path: str | None, as_json: bool) -> None:
    """List datasets, or show dataset REF (name, path or digest prefix) and its slots.

    \b
    Examples:
      fsstore datasets                       every dataset with its slots
      fsstore datasets --member CD8A         datasets measuring a member
      fsstore datasets --set GRCh38-2020-A   datasets measuring a set
      fsstore datasets --shared              sets shared by several datasets
      fsstore datasets pbmc --slot var       the members of a slot
    """
    _check_datasets_options(ref, slot, history, set_ref, member, shared)
    store = open_store(store_path)
    if ref is not None:
        _show_dataset(store, ref, slot, history, as_json)
    elif shared:
        _show_shared(store, min_datasets, as_json)
    elif set_ref is not None or member is not None:
        found = datasets_measuring(store, set_ref=set_ref, member=member,
                                   ignore_case=ignore_case)
        if as_json:
            emit_json(found.to_dict(orient="records"))
            return
        columns = ["dataset", "name", "path", "slot", "set"] + (["member"] if member else [])
        rows = [[short(row["dataset"]), row["name"], row["path"], row["slot"],
                 short(row["hash"])] + ([row["member"]] if member else [])
                for row in found.to_dict(orient="records")]
        print_table(columns, rows)
    else:
        _list_datasets(store, as_json)


def _check_datasets_options(ref: str | None, slot: str | None, history: bool,
                            set_ref: str | None, member: str | None, shared: bool) -> None:
    """Refuse options that would be ignored: each form of the command takes its own."""
    if set_ref is not None and member is not None:
        raise click.UsageError("--set and --member each choose datasets; give one of them")
    choosers = [name for name, given in (("--set", set_ref is not None),
                                         ("--member", member is not None),
                                         ("--shared", shared)) if given]
    if ref is not None and choosers:
        raise click.UsageError(f"{choosers[0]} lists datasets; it cannot be used with a "
                               "dataset REF")
    if shared and choosers[1:]:
        raise click.UsageError(f"--shared lists shared sets; {choosers[1]} cannot be used "
                               "with it")
    if ref is None and (slot is not None or history):
        raise click.UsageError(f"{'--slot' if slot is not None else '--history'} shows a "
                               "dataset: give its REF")
    if slot is not None and history:
        raise click.UsageError("--slot lists a slot's members and --history the dataset's "
                               "link events; give one of them")


def _list_datasets(store: Store, as_json: bool) -> None:
    table = store.datasets()
    if as_json:
        emit_json(table.to_dict(orient="records"))
        return
    rows = []
    for row in table.to_dict(orient="records"):
        slots = " ".join(f"{slot}={short(hash_hex)}" for slot, hash_hex in row["slots"].items())
        label = row["name"] or row["path"]
        if row["superseded_by"]:
            label = f"{label} (changed since: now {short(row['superseded_by'])})"
        rows.append((short(row["dataset"]), label, row["format"], f"{row['size']:,}",
                     "yes" if row["stored"] else "-", slots or "-",
                     format_time(row["registered_at"])))
    print_table(("dataset", "name or path", "format", "bytes", "stored", "slots",
                 "registered"), rows)


def _show_dataset(store: Store, ref: str, slot: str | None, history: bool,
                  as_json: bool) -> None:
    digest = resolve_dataset(store, ref)
    if slot is not None:
        feature_set = slot_set(store, digest, slot)
        if as_json:
            emit_json({"dataset": digest, "slot": slot, "hash": feature_set.hash,
                       "itype": feature_set.itype, "n": feature_set.n,
                       "members": feature_set.members.to_dict(orient="records")})
            return
        pairs = feature_set.canonical.members
        click.echo("\n".join(f"{name}\t{dtype}" if dtype else name for name, dtype in pairs))
        return
    if history:
        events = dataset_history(store, digest)
        if as_json:
            emit_json(events.to_dict(orient="records"))
            return
        print_table(("seq", "time", "user", "slot", "set", "event"),
                    [(row["seq"], format_time(row["time"]), row["user"], row["slot"],
                      short(row["hash"]), "linked" if row["linked"] else "unlinked")
                     for row in events.to_dict(orient="records")])
        return
    table = store.datasets()
    record = table[table["dataset"] == digest].to_dict(orient="records")[0]
    record["object"] = store.where(dataset_file_key(digest)) if record["stored"] else None
    if as_json:
        emit_json(record)
        return
    for key in ("dataset", "name", "path", "format", "size", "stored", "object",
                "registered_at", "superseded_by"):
        value = record[key]
        if key == "registered_at":
            value = format_time(value)
        click.echo(f"{key:<14}{'-' if value is None else value}")
    click.echo("slots:")
    for slot_name, hash_hex in record["slots"].items():
        feature_set = store.get(hash_hex)
        click.echo(f"  {slot_name:<10} {short(hash_hex)}  {plural(feature_set.n, 'member')} "
                   f"of {feature_set.itype}")


def _show_shared(store: Store, min_datasets: int, as_json: bool) -> None:
    shared = shared_sets(store, min_datasets)
    described = store.datasets().set_index("dataset")
    sets = store.sets().set_index("hash")
    if as_json:
        documents = []
        for row in shared.to_dict(orient="records"):
            documents.append({
                "hash": row["hash"], "names": sets.loc[row["hash"], "names"],
                "itype": sets.loc[row["hash"], "itype"], "n": int(sets.loc[row["hash"], "n"]),
                "slots": row["slots"],
                "datasets": [{"dataset": dataset, "name": described.loc[dataset, "name"],
                              "path": described.loc[dataset, "path"]}
                             for dataset in row["datasets"]]})
        emit_json(documents)
        return
    click.echo(f"{len(shared)} sets are held by {min_datasets} or more datasets")
    for row in shared.to_dict(orient="records"):
        names = ", ".join(sets.loc[row["hash"], "names"]) or "unnamed"
        click.echo(f"{short(row['hash'])}  {names}  {int(sets.loc[row['hash'], 'n'])} members "
                   f"of {sets.loc[row['hash'], 'itype']}  in {row['n_datasets']} datasets "
                   f"(slot {', '.join(row['slots'])}):")
        for dataset in row["datasets"]:
            label = described.loc[dataset, "name"] or described.loc[dataset, "path"]
            click.echo(f"    {short(dataset)}  {label}")


@click.command()
@click.argument("ref")
@click.argument("destination", metavar="DESTINATION|-")
@store_option
@json_option
def export(ref: str, destination: str, store_path: str | None, as_json: bool) -> None:
    """Write the stored bytes of dataset REF (added with --copy) to DESTINATION.

    The bytes are checked against the dataset's BLAKE3 digest while they are written; on
    a mismatch DESTINATION is removed and the command fails.
    """
    from blake3 import blake3

    store = open_store(store_path)
    digest = resolve_dataset(store, ref)
    to_stdout = destination == "-"
    if to_stdout and as_json:
        raise click.UsageError("the dataset's bytes go to standard output with -, so --json "
                               "cannot go there too")
    if not to_stdout and os.path.exists(destination):
        raise OutputExistsError(f"{destination} exists; choose a new file name, or remove it "
                                "first", destination)
    if to_stdout:
        # Bytes sent to a pipe cannot be taken back: check the copy before sending any.
        checker = blake3()
        with open_dataset(store, digest) as source:
            while chunk := source.read(1 << 20):
                checker.update(chunk)
        if checker.hexdigest() != digest:
            raise _damaged_copy(store, digest, checker.hexdigest())
    hasher = blake3()
    size = 0
    with contextlib.ExitStack() as stack:
        # The stored bytes first: a dataset without them creates no DESTINATION.
        source = stack.enter_context(open_dataset(store, digest))
        target = sys.stdout.buffer if to_stdout else stack.enter_context(
            _created(destination))
        try:
            while chunk := source.read(1 << 20):
                hasher.update(chunk)
                target.write(chunk)
                size += len(chunk)
            target.flush()
        except BaseException:
            if not to_stdout:
                stack.close()
                os.unlink(destination)  # a failed export leaves nothing behind
            raise
    if hasher.hexdigest() != digest:
        if not to_stdout:
            os.unlink(destination)
        raise _damaged_copy(store, digest, hasher.hexdigest())
    if as_json:
        emit_json({"dataset": digest, "path": os.path.abspath(destination), "bytes": size,
                   "checked": True})
        return
    click.echo(f"wrote {destination} ({size:,} bytes, BLAKE3 {short(digest)} checked)",
               err=to_stdout)


def _damaged_copy(store: Store, digest: str, actual: str) -> CorruptObjectError:
    where = store.where(dataset_file_key(digest))
    return CorruptObjectError(
        f"the stored bytes of dataset {digest[:12]} ({where}) hash to {actual[:12]}: the copy "
        "is damaged. Run `fsstore verify --repair` (it moves the damaged copy to "
        "quarantine), then `fsstore link ORIGINAL --copy` to store the original file's "
        "bytes again", where, digest)


def _created(destination: str) -> BinaryIO:
    """``destination`` opened for writing, created here (never an existing file)."""
    try:
        return open(destination, "xb")
    except FileExistsError:
        raise OutputExistsError(f"{destination} exists; choose a new file name, or remove it "
                                "first", destination) from None
    except OSError as error:
        raise StorageError(f"cannot write {destination}: {error.strerror or error}; check "
                           "that its folder exists and is writable", destination) from error
