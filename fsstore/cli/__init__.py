"""The ``fsstore`` command: one group, subcommands in modules by topic.

Errors print one line on standard error and exit non-zero (see ``EXIT_CODES``); ``-v``
shows what the library logs, ``-vv`` also the traceback of an unexpected error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from typing import Final

import click

from fsstore.cli.common import EXIT_CODES, exit_code_of
from fsstore.cli.datasets import datasets_command, export, link_command
from fsstore.cli.maintenance import gc, unlock, verify_command
from fsstore.cli.queries import diff_command, find, similar_command
from fsstore.cli.registry import registry, validate
from fsstore.cli.sets import add, init, log_command, ls, show
from fsstore.cli.sync import clone_command, pull_command, push_command, remote
from fsstore.errors import FsstoreError

__all__ = ["cli", "main"]

EXIT_INTERNAL: Final = 70
EXIT_STORAGE: Final = 7
EXIT_INTERRUPTED: Final = 130

_CODES_HELP: Final = "\n".join(
    f"  {code}   {meaning}" for code, meaning, _ in EXIT_CODES
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 99},
    epilog="\b\nExit status:\n  0   success\n  1   other fsstore error\n  2   usage error\n"
    + _CODES_HELP + f"\n  {EXIT_INTERNAL}  unexpected internal error (a bug: please report it)",
)
@click.version_option(package_name="fsstore", message="fsstore %(version)s")
@click.option("-v", "--verbose", count=True, help="Log progress (-v) and debug detail (-vv).")
@click.pass_context
def cli(context: click.Context, verbose: int) -> None:
    """Store feature sets as content-addressed Parquet manifests; no database."""
    context.obj = {"verbose": verbose}
    logging.getLogger("fsstore").setLevel(logging.DEBUG if verbose > 1 else
                                          logging.INFO if verbose else logging.WARNING)


for command in (init, add, ls, show, log_command, registry, validate, link_command,
                datasets_command, export, find, similar_command, diff_command, remote,
                push_command, pull_command, clone_command, verify_command, gc, unlock):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status instead of raising."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "-vv" in args or args.count("-v") + args.count("--verbose") > 1
    # What the library logs (warnings always, progress with -v) goes to this call's stderr;
    # the handler leaves with the call, so calling main() again does not print twice.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("fsstore")
    package_logger.addHandler(handler)
    try:
        return _run(args, verbose)
    finally:
        package_logger.removeHandler(handler)


def _run(args: list[str], verbose: bool) -> int:
    try:
        # Not cli.main: it turns a closed output pipe (`fsstore show x | head`) into exit
        # status 1 with no message; here every outcome reaches the handlers below.
        with cli.make_context("fsstore", list(args)) as context:
            result = cli.invoke(context)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # `fsstore registry`: show its help
            error.show()
            return error.exit_code
        return _failed(args, _usage_line(error), error.exit_code, "usage")
    except click.ClickException as error:
        return _failed(args, error.format_message(), error.exit_code, "usage")
    except click.Abort:
        return _failed(args, "aborted", EXIT_INTERRUPTED, "interrupted", prefix="")
    except FsstoreError as error:
        return _failed(args, str(error), exit_code_of(error), type(error).__name__)
    except KeyboardInterrupt:
        return _failed(args, "interrupted", EXIT_INTERRUPTED, "interrupted", prefix="")
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as error:
        # A file-system refusal the library did not anticipate (permissions, a file where a
        # folder belongs, a full disk when writing output): one line, not a traceback.
        where = f" ({error.filename})" if error.filename else ""
        return _failed(args, f"{error.strerror or error}{where}; check the store folder and "
                       "its permissions, then run `fsstore verify`", EXIT_STORAGE, "OSError")
    except Exception as error:
        if verbose:
            raise
        return _failed(args, f"{type(error).__name__}: {error} (run `fsstore -vv ...` for the "
                       "traceback; please report it)", EXIT_INTERNAL, "internal",
                       prefix="internal error: ")
    return result if isinstance(result, int) else 0


def _failed(args: list[str], message: str, code: int, kind: str,
            prefix: str = "error: ") -> int:
    """Say why a command failed: one line on stderr, and a JSON object on stdout with --json.

    With --json, a script reading stdout always gets JSON: the command's result, or
    ``{"error": ..., "kind": ..., "exit_status": ...}``.
    """
    click.echo(f"{prefix}{message}", err=True)
    if "--json" in args:
        with contextlib.suppress(OSError):
            click.echo(json.dumps({"error": message, "kind": kind, "exit_status": code}))
    return code


def _usage_line(error: click.UsageError) -> str:
    """click's usage error as one line, pointing at the command's help."""
    message = " ".join(error.format_message().split())
    command = error.ctx.command_path if error.ctx is not None else "fsstore"
    return f"{message.rstrip('.')}; see `{command} --help`"


def _quiet_broken_pipe() -> int:
    # The reader of our output went away (e.g. `fsstore show x | head`); point stdout at
    # /dev/null so that the interpreter's final flush does not fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def entry_point() -> None:
    """The ``fsstore`` command: run it, then leave without the interpreter's teardown.

    pyarrow's native thread pools can abort that teardown ("terminate called without an
    active exception", exit status 134) after a command has done all its work and printed
    its output, a few runs in a hundred under load. Everything the command wrote is
    flushed and every file it opened is closed by then, so leaving at once loses nothing.
    """
    status = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            _quiet_broken_pipe()
        except (OSError, ValueError):
            pass  # a closed or failing stream: nothing more can be said on it
    os._exit(status)
