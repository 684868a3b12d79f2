"""Commands between stores: remote add/remove/list, push, pull, clone."""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Any

import click

from fsstore.cli.common import (
    emit_json,
    format_time,
    json_option,
    open_store,
    print_table,
    short,
    store_option,
)
from fsstore.errors import StoreNotFoundError
from fsstore.store import Store
from fsstore.sync import (
    SyncReport,
    add_remote,
    clone,
    pull,
    push,
    remote_url,
    remotes,
    remove_remote,
)
from fsstore.sync.history import Conflict

__all__ = ["clone_command", "pull_command", "push_command", "remote"]


class TransferBars:
    """A progress bar of objects and bytes on standard error, when it is a terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[done]:,}/{task.fields[count]:,} objects"),
            DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
            console=console, disable=not (enabled and console.is_terminal))
        self._label = label
        self._task: Any = None
        self._done = 0

    def __enter__(self) -> TransferBars:
        self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._progress.stop()

    def planned(self, objects: int, size: int) -> None:
        self._task = self._progress.add_task(self._label, total=size, done=0, count=objects)

    def copied(self, key: str, size: int) -> None:
        self._done += 1
        self._progress.update(self._task, advance=size, done=self._done)


@click.group(invoke_without_command=True)
@store_option
@json_option
@click.pass_context
def remote(context: click.Context, store_path: str | None, as_json: bool) -> None:
    """Name other stores (folders or buckets) to push to and pull from.

    \b
    Examples:
      fsstore remote add team s3://lab-bucket/fsstore
      fsstore remote add backup /mnt/share/fsstore
      fsstore remote            (lists them)
    """
    if context.invoked_subcommand is None:
        _list_remotes(open_store(store_path), as_json)


@remote.command("add")
@click.argument("name")
@click.argument("url", metavar="URL")
@store_option
@json_option
def remote_add(name: str, url: str, store_path: str | None, as_json: bool) -> None:
    """Name the store at URL (s3://, gs://, az:// or a folder) NAME."""
    store = open_store(store_path)
    saved = add_remote(store, name, url)
    if as_json:
        emit_json({"name": name, "url": saved})
        return
    click.echo(f"added remote {name} -> {saved}")


@remote.command("remove")
@click.argument("name")
@store_option
@json_option
def remote_remove(name: str, store_path: str | None, as_json: bool) -> None:
    """Forget the remote NAME (the store it names is not touched)."""
    store = open_store(store_path)
    url = remotes(store).get(name)
    remove_remote(store, name)
    if as_json:
        emit_json({"name": name, "url": url, "removed": True})
        return
    click.echo(f"removed remote {name}")


@remote.command("list")
@store_option
@json_option
def remote_list(store_path: str | None, as_json: bool) -> None:
    """List the remotes."""
    _list_remotes(open_store(store_path), as_json)


def _list_remotes(store: Store, as_json: bool) -> None:
    named = remotes(store)
    if as_json:
        emit_json([{"name": name, "url": url} for name, url in named.items()])
        return
    if not named:
        click.echo("no remotes; add one with `fsstore remote add NAME URL`")
        return
    print_table(("name", "url"), list(named.items()))


@click.command("push")
@click.argument("remote_name", metavar="REMOTE")
@store_option
@json_option
def push_command(remote_name: str, store_path: str | None, as_json: bool) -> None:
    """Copy to REMOTE every set and index entry it lacks (creating the store if needed).

    REMOTE is a remote's name, a URL or a folder. Objects are verified before they are
    written; conflicts (a set name, a dataset name or a slot moved in both stores) are
    reported, and both sides kept in the history.
    """
    store = open_store(store_path)
    with TransferBars("push", not as_json) as bars:
        report = push(store, remote_name, bars)
    _finish(report, "pushed to", remote_name, as_json)


@click.command("pull")
@click.argument("remote_name", metavar="REMOTE")
@store_option
@json_option
def pull_command(remote_name: str, store_path: str | None, as_json: bool) -> None:
    """Copy from REMOTE every set and index entry this store lacks, verifying each."""
    store = open_store(store_path)
    with TransferBars("pull", not as_json) as bars:
        report = pull(store, remote_name, bars)
    _finish(report, "pulled from", remote_name, as_json)


@click.command("clone")
@click.argument("remote_name", metavar="REMOTE")
@click.argument("path")
@store_option
@json_option
def clone_command(remote_name: str, path: str, store_path: str | None, as_json: bool) -> None:
    """Make a new store at PATH with everything of REMOTE, which it names origin.

    REMOTE is a URL, a folder, or the name of a remote of the current store (--store).
    """
    try:
        current: Store | None = open_store(store_path)
    except StoreNotFoundError:
        current = None
    with TransferBars("clone", not as_json) as bars:
        _, report = clone(remote_url(current, remote_name), path, bars)
    _finish(report, "cloned", remote_name, as_json)


def _finish(report: SyncReport, verb: str, remote_name: str, as_json: bool) -> None:
    if as_json:
        emit_json(report.to_dict())
    else:
        _describe(report, verb, remote_name)
    report.check()


def _describe(report: SyncReport, verb: str, remote_name: str) -> None:
    if report.initialised and verb == "pushed to":
        click.echo(f"initialized a new store at {report.destination}")
    where = report.destination if verb == "pushed to" else report.source
    label = where if remote_name == where else f"{remote_name} ({where})"
    if verb == "cloned":
        label = f"{label} into {report.destination}"
    copied = report.objects
    history = report.history
    click.echo(f"{verb} {label}: {_count(len(copied.copied), 'object')} copied "
               f"({_size(copied.size)}), {report.plan.present:,} already there; "
               f"{_count(history.commits, 'index commit')} merged "
               f"({_count(history.events, 'event')})")
    for conflict in history.conflicts:
        click.echo(_conflict_line(conflict), err=True)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)


def _conflict_line(conflict: Conflict) -> str:
    """One line saying which pointer both stores moved, to where, and where it points now."""

    def who(event: dict[str, Any]) -> str:
        moment = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        return f"({event['user']}, {format_time(moment)})"

    if conflict.kind == "link":
        dataset, slot = (str(part) for part in conflict.key)

        def held(event: dict[str, Any]) -> str:
            return short(event["hash"]) if event.get("linked") else "nothing (emptied)"

        return (f'conflict: slot "{slot}" of dataset {short(dataset)} was re-annotated in '
                f"both stores: here to {held(conflict.here)} {who(conflict.here)}, there to "
                f"{held(conflict.there)} {who(conflict.there)}; both stay in the slot's "
                f"history and it now holds {held(conflict.chosen)}, the later one. See "
                f"`fsstore datasets {short(dataset)} --history`")
    name = "/".join(str(part) for part in conflict.key)
    if conflict.kind == "dataset":
        return (f'conflict: dataset name "{name}" was given in both stores: here to dataset '
                f"{short(conflict.here['dataset'])} {who(conflict.here)}, there to dataset "
                f"{short(conflict.there['dataset'])} {who(conflict.there)}; both datasets are "
                f'kept and "{name}" now names {short(conflict.chosen["dataset"])}, the later '
                "one. See `fsstore datasets`")
    if conflict.kind != "set":
        return (f'conflict: {conflict.kind} "{name}" was moved in both stores; it now follows '
                f"the move {who(conflict.chosen)}, the later one")
    return (f'conflict: "{name}" was moved in both stores: here to '
            f"{short(conflict.here['hash'])} {who(conflict.here)}, there to "
            f"{short(conflict.there['hash'])} {who(conflict.there)}; both sets are kept and "
            f"\"{name}\" now points at {short(conflict.chosen['hash'])}, the later one. See "
            f"`fsstore log {name}`")


def _size(size: int) -> str:
    if size < 1000:
        return _count(size, "byte")
    scaled = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        scaled /= 1000
        if scaled < 1000 or unit == "TB":
            break
    return f"{size:,} bytes, {scaled:,.1f} {unit}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")
