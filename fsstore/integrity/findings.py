"""What ``verify`` finds: one record per problem, and the report that gathers them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["ERRORS", "NOTES", "Finding", "Report"]

ERRORS: Final[dict[str, str]] = {
    "corrupt": "an object whose content does not match its name, or cannot be read",
    "truncated": "an object cut short",
    "unreadable": "an object the file system refused to read (permissions, I/O error); "
                  "repair leaves it where it is",
    "misplaced": "an intact object stored under the wrong name or folder",
    "foreign": "a file that is not part of the store's layout",
    "missing": "an object the index refers to that is not there",
    "damaged-run": "an index run whose files do not match their recorded BLAKE3",
    "damaged-commit": "an index commit that does not parse or match its checksum",
    "gap": "index commit numbers held by no commit and no run (events lost)",
    "missing-index": "the index folder is gone while objects remain (every event lost)",
    "lost-events": "index events lost with damaged index files, not yet recovered from the "
                   "objects they recorded",
    "stale-temporary": "a temporary file older than the grace period, left by a crash",
    "unknown-kind": "index events of a kind this fsstore does not know (a newer writer)",
}
"""Problems: verify exits non-zero when it finds any of these."""

NOTES: Final[dict[str, str]] = {
    "temporary": "a temporary file younger than the grace period (a write in progress?)",
    "unreferenced": "an intact object no index entry refers to (gc removes it)",
    "superseded": "index files a wider run also holds (gc removes them)",
    "unfinished-run": "an index run folder without RUN.json, left by an interrupted "
                      "compaction (gc removes it)",
    "quarantined": "a file in the quarantine folder, kept for inspection",
}
"""Remarks that are not damage."""


@dataclass(frozen=True)
class Finding:
    """One problem or remark about one key (or, for gaps, a range of commits)."""

    problem: str
    key: str
    detail: str
    kind: str | None = None
    """The object kind, for objects."""
    digest: str | None = None
    """For misplaced objects: the digest their content has."""

    @property
    def is_error(self) -> bool:
        return self.problem in ERRORS

    def as_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "key": self.key, "detail": self.detail,
                "kind": self.kind, "error": self.is_error}


@dataclass
class Report:
    """Everything one ``verify`` found, and how much it read."""

    findings: list[Finding] = field(default_factory=list)
    objects: int = 0
    """Objects re-hashed."""
    bytes: int = 0
    """Bytes re-hashed: objects, index runs and commits."""
    seconds: float = 0.0
    events: int = 0
    """Index events read."""

    def add(self, problem: str, key: str, detail: str, **extra: Any) -> None:
        self.findings.append(Finding(problem, key, detail, **extra))

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self, errors: bool = True) -> dict[str, int]:
        found = Counter(finding.problem for finding in self.findings
                        if finding.is_error == errors)
        return dict(sorted(found.items()))

    @property
    def throughput(self) -> float:
        """MB/s re-hashed."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: what was checked and what was found."""
        checked = (f"{self.objects:,} objects and {self.events:,} index events checked "
                   f"({self.bytes / 1e6:,.1f} MB in {self.seconds:.1f}s, "
                   f"{self.throughput:,.0f} MB/s)")
        if self.ok:
            return f"{checked}: no problems"
        counts = ", ".join(f"{count} {problem}" for problem, count in self.counts().items())
        return (f"{checked}: {len(self.errors)} problem(s) ({counts}); "
                "run `fsstore verify --repair` to quarantine damaged files and rebuild "
                "the index")

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "objects": self.objects, "events": self.events,
                "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "mb_per_s": round(self.throughput, 1), "problems": self.counts(),
                "notes": self.counts(errors=False),
                "findings": [finding.as_dict() for finding in self.findings]}
