"""Commands that look after a store: verify (and repair), gc, unlock."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import click

from fsstore.cli.common import emit_json, json_option, open_store, print_table, store_option
from fsstore.index.index import COMPACT_LOCK_KEY, LOCK_KEY
from fsstore.integrity.findings import Report
from fsstore.integrity.gc import collect_garbage
from fsstore.integrity.repair import repair
from fsstore.integrity.verify import DEFAULT_GRACE, verify

__all__ = ["gc", "unlock", "verify_command"]

EXIT_DAMAGED: Final = 5
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SHOWN: Final = 50


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+ only
    """A duration such as ``90s``, ``30m``, ``12h``, ``7d`` or a plain number of seconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.match(str(value))
        if not found:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 12h or 7d", param, ctx)
        return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def grace_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--grace", type=Duration(), default=DEFAULT_GRACE, show_default="24h",
        help="Age after which temporary files (and, for gc, unreferenced objects) count as "
        "left over.")(function)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on standard error while verify reads, when it is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress("verifying", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("verify", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print_findings(report: Report) -> None:
    shown = report.errors[:_SHOWN]
    if shown:
        print_table(["problem", "file", "detail"],
                    [(finding.problem, finding.key, finding.detail) for finding in shown])
        if len(report.errors) > _SHOWN:
            click.echo(f"... and {len(report.errors) - _SHOWN} more (--json lists them all)")
    notes = report.counts(errors=False)
    if notes:
        click.echo("notes: " + ", ".join(f"{count} {problem}"
                                         for problem, count in notes.items()))


@click.command("verify")
@click.option("--repair", "fix", is_flag=True,
              help="Move damaged and foreign files to quarantine/, put misplaced objects "
              "back, delete stale temporary files and rebuild a damaged index.")
@click.option("--quick", is_flag=True,
              help="Check manifests by their seal (BLAKE3 of the file) and recorded hash "
              "instead of re-hashing their members; as sure to catch damage, much faster.")
@grace_option
@click.option("--workers", type=click.IntRange(1, 64), metavar="N",
              help="Threads re-hashing objects [default: one per CPU, at most 8].")
@store_option
@json_option
def verify_command(fix: bool, quick: bool, grace: float, workers: int | None,
                   store_path: str | None, as_json: bool) -> None:
    """Re-hash every object and index file and check the index against the objects.

    Exits with status 5 if anything is damaged, missing, misplaced or foreign (after
    --repair: if anything could not be repaired).
    """
    store = open_store(store_path)
    with _progress(not as_json) as progress:
        report = verify(store, grace=grace, workers=workers, progress=progress, quick=quick)
    if not fix:
        if as_json:
            emit_json(report.as_dict())
        else:
            _print_findings(report)
            click.echo(report.summary())
        if not report.ok:
            raise click.exceptions.Exit(EXIT_DAMAGED)
        return
    repaired = repair(store, report, grace=grace) if not report.ok else None
    with _progress(not as_json) as progress:
        after = verify(store, grace=grace, workers=workers, progress=progress, quick=quick)
    if as_json:
        emit_json({"before": report.as_dict(),
                   "repair": repaired.as_dict() if repaired else None,
                   "after": after.as_dict()})
    else:
        _print_findings(report)
        click.echo(f"before: {report.summary()}")
        if repaired is not None:
            _print_repair(repaired)
        click.echo(f"after: {after.summary()}")
    if not after.ok:
        raise click.exceptions.Exit(EXIT_DAMAGED)


def _print_repair(repaired: Any) -> None:
    for target in repaired.restored:
        click.echo(f"put back {target}")
    if repaired.quarantined:
        click.echo(f"moved {len(repaired.quarantined)} file(s) to "
                   f"{', '.join(repaired.quarantine)}")
    if repaired.removed_temporary:
        click.echo(f"deleted {len(repaired.removed_temporary)} stale temporary file(s)")
    if repaired.rebuilt_events is not None:
        click.echo(f"rebuilt the index: {repaired.rebuilt_events:,} events kept")
    for lost in repaired.lost:
        click.echo(f"lost: {lost}")
    if repaired.recovered:
        click.echo(f"recovered {repaired.recovered} event(s) from stored objects "
                   "(without names)")
    for finding in repaired.unrepaired:
        click.echo(f"not repaired: {finding.key}: {finding.detail}")


@click.command()
@click.option("--dry-run", "-n", is_flag=True, help="Only list what would be removed.")
@grace_option
@store_option
@json_option
def gc(dry_run: bool, grace: float, store_path: str | None, as_json: bool) -> None:
    """Remove objects no index entry reaches, and files interrupted writes left behind."""
    store = open_store(store_path)
    done = collect_garbage(store, grace=grace, dry_run=dry_run)
    if as_json:
        emit_json(done.as_dict())
        return
    if done.removed:
        print_table(["file", "bytes", "why"], done.removed[:_SHOWN])
        if len(done.removed) > _SHOWN:
            click.echo(f"... and {len(done.removed) - _SHOWN} more (--json lists them all)")
    verb = "would remove" if dry_run else "removed"
    click.echo(f"gc {verb} {len(done.removed)} file(s), {done.bytes:,} bytes"
               + (f"; kept {done.kept_young} unreferenced object(s) younger than the grace "
                  "period" if done.kept_young else ""))


@click.command()
@click.option("--force", is_flag=True,
              help="Break a holder record whose pid runs on this machine but does not "
                   "hold the lock file (a reused pid).")
@store_option
@json_option
def unlock(force: bool, store_path: str | None, as_json: bool) -> None:
    """Break the store's lock, left by a writer that died on another machine.

    A writer that died on this machine is recovered automatically; a lock from another
    machine is never broken on age, because fsstore cannot tell from here whether its
    holder still runs. Check that it does not, then run this.
    """
    store = open_store(store_path)
    broken = []
    for name in (LOCK_KEY, COMPACT_LOCK_KEY):
        holder = store.backend.break_lock(name, force=force)
        if holder is not None:
            broken.append({"lock": name, **holder})
    if as_json:
        emit_json({"broken": broken})
        return
    if not broken:
        click.echo(f"no lock of {store.location} was held")
    for lock in broken:
        click.echo(f"broke {lock['lock']}, held by pid {lock['pid']} on {lock['host']}")
