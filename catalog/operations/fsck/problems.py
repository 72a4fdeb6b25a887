"""What fsck reports: each problem, the safe fix it may have, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

WARNING_KINDS = frozenset(
    {
        "container-image-missing",
        "layer-unused",
        "blob-unused",
        "blob-unreferenced",
        "temporary-file",
        "lease-dead",
    }
)


# Streamed config rows fetched at a time.
class FixAction(StrEnum):
    SET_BLOB_SIZE = "set-blob-size"
    DELETE_BLOB_ROW = "delete-blob-row"
    SET_LAYER_DIFF_SIZE = "set-layer-diff-size"
    SET_IMAGE_SIZE = "set-image-size"
    SET_TOP_CHAIN_ID = "set-top-chain-id"
    DELETE_REFERENCE = "delete-reference"
    DELETE_ORPHAN_ROWS = "delete-orphan-rows"
    REWRITE_KEPT_FACTS = "rewrite-kept-facts"
    REMOVE_BLOB_FILE = "remove-blob-file"
    REMOVE_TEMPORARY_FILE = "remove-temporary-file"
    RELEASE_LEASE = "release-lease"


@dataclass(frozen=True)
class Fix:
    """A safe repair: `action` on `key` (a digest, chain ID, image ID, reference row ID,
    table name or path), with `value` where it sets one; `description` says it."""

    action: FixAction
    key: str
    description: str
    value: int | str | None = None
    image_id: str | None = None  # DELETE_ORPHAN_ROWS: whose rows


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str
    detail: str
    fix: Fix | None = None
    # Why an error cannot be repaired (shown by --repair).
    unrepairable: str | None = None

    @property
    def warning(self) -> bool:
        return self.kind in WARNING_KINDS

    def line(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class RepairOutcome:
    problem: Problem
    repaired: bool
    note: str

    def line(self) -> str:
        word = "Repaired" if self.repaired else "Not repaired"
        return f"{word}: {self.problem.kind}: {self.problem.subject}: {self.note}"


@dataclass
class Checked:
    blobs: int = 0
    blob_files: int = 0
    layers: int = 0
    images: int = 0
    references: int = 0
    containers: int = 0
    # How the database itself was checked (catalog.operations.fsck.database).
    database: str = ""


@dataclass
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    checked: Checked = field(default_factory=Checked)
    repairs: list[RepairOutcome] | None = None  # None: not asked to repair

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.warning]

    @property
    def remaining_errors(self) -> list[Problem]:
        """Errors still there: all of them, or after --repair those it could not fix."""
        if self.repairs is None:
            return self.errors
        fixed = {id(o.problem) for o in self.repairs if o.repaired}
        return [p for p in self.errors if id(p) not in fixed]

    def lines(self) -> list[str]:
        lines = [p.line() for p in self.problems]
        if self.repairs is not None:
            lines += [o.line() for o in self.repairs]
        return lines

    def summary(self) -> str:
        c = self.checked
        counted = (
            f"checked {c.images} images, {c.layers} layers, {c.blobs} blob rows,"
            f" {c.blob_files} blob files, {c.references} references, {c.containers} containers"
        )
        if c.database:
            counted += f", the database ({c.database})"
        errors, warnings = len(self.errors), len(self.warnings)
        found = f"{errors} error{plural(errors)}, {warnings} warning{plural(warnings)}"
        if self.repairs is not None:
            repaired = sum(o.repaired for o in self.repairs)
            left = len(self.remaining_errors)
            found += f", {repaired} repaired, {left} error{plural(left)} left"
        return f"fsck: {counted}: {found}"


def plural(count: int) -> str:
    return "" if count == 1 else "s"


def by_subject(problem: Problem) -> str:
    return problem.subject
