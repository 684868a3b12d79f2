"""Start worker processes together, through a barrier on their standard input and output.

A worker that should act at the same moment as the others prints ``ready`` (alone on a
line, flushed) once it is set up, then waits for one line on its standard input:

    print("ready", flush=True)
    sys.stdin.readline()

The parent (:class:`Workers`) releases them all at once, writing ``go`` to each, only when
every one has said it is ready, so that the race a test wants happens however slow the
machine is; the deadline only bounds how long a stuck worker can hold the test.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any, Final, NoReturn

READY: Final = "ready"
GO: Final = "go\n"


class Workers:
    """Worker processes that can be released together, any number of times.

    ``Workers(commands, deadline=120, cwd=...)`` starts them; :meth:`release` waits until
    each has printed ``ready`` and lets them all go; :meth:`finish` waits for them to exit
    and returns the lines each printed (``ready`` lines left out). Past the deadline every
    worker is killed and the test fails, saying so.
    """

    def __init__(self, commands: Sequence[Sequence[str]], *, deadline: float,
                 **options: Any) -> None:
        self._deadline = time.monotonic() + deadline
        self._seconds = deadline
        self.processes = [subprocess.Popen(list(command), stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, **options)
                          for command in commands]
        self._lines: list[queue.Queue[str | None]] = [queue.Queue() for _ in self.processes]
        self._printed: list[list[str]] = [[] for _ in self.processes]
        self._errors = [""] * len(self.processes)
        self._threads = []
        for number, process in enumerate(self.processes):
            self._threads += [threading.Thread(target=self._read_lines, args=(number, process),
                                               daemon=True),
                              threading.Thread(target=self._read_errors,
                                               args=(number, process), daemon=True)]
        for thread in self._threads:
            thread.start()

    def release(self) -> None:
        """Wait until every worker is ready, then let them all go at once."""
        for number in range(len(self.processes)):
            while True:
                line = self._next_line(number)
                if line is None:
                    self._fail(f"worker {number} exited before it was ready")
                if line == READY:
                    break
                self._printed[number].append(line)
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(GO)
            process.stdin.flush()

    def finish(self) -> list[list[str]]:
        """Wait for every worker to exit successfully; the lines each printed."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for number, process in enumerate(self.processes):
            try:
                process.wait(timeout=max(0.0, self._deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._fail(f"worker {number} did not finish")
        for thread in self._threads:
            thread.join(timeout=max(0.0, self._deadline - time.monotonic()))
        for number, process in enumerate(self.processes):
            assert process.returncode == 0, self._errors[number]
            while (line := self._next_line(number)) is not None:
                if line != READY:
                    self._printed[number].append(line)
        return self._printed

    def errors(self, number: int) -> str:
        """What worker ``number`` wrote on its standard error (complete after finish)."""
        return self._errors[number]

    def _next_line(self, number: int) -> str | None:
        try:
            return self._lines[number].get(timeout=max(0.0, self._deadline - time.monotonic()))
        except queue.Empty:
            self._fail(f"worker {number} fell silent")

    def _fail(self, what: str) -> NoReturn:
        for process in self.processes:
            process.kill()
        raise AssertionError(f"{what} within the {self._seconds:g}s deadline; standard "
                             f"errors: {self._errors}")

    def _read_lines(self, number: int, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._lines[number].put(line.rstrip("\n"))
        self._lines[number].put(None)

    def _read_errors(self, number: int, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._errors[number] = process.stderr.read()
