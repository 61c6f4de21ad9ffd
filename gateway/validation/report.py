"""The outcome of validating one XML document against the schema catalog."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import SchemaInvalid


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One schema violation: where it is (line, XPath-like path) and why."""

    line: int | None
    path: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "path": self.path, "reason": self.reason}

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "line ?"
        return f"{where}, {self.path or '/'}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """All problems found in a document whose root is ``{namespace}root``; none means valid."""

    namespace: str
    root: str
    problems: tuple[SchemaProblem, ...] = ()
    #: Problems found beyond those listed (reporting is capped).
    more: int = 0

    @property
    def valid(self) -> bool:
        return not self.problems

    def raise_if_invalid(self) -> None:
        """``SchemaInvalid`` (AppRec T02) naming the first problem's line, reason and path."""
        if self.valid:
            return
        first = self.problems[0]
        others = len(self.problems) - 1 + self.more
        more = f" (og {others} feil til)" if others else ""
        raise SchemaInvalid(f"Linje {first.line}: {first.reason}{more}", location=first.path)

    def summary(self) -> str:
        """A readable multi-line summary, one problem per line."""
        subject = f"{{{self.namespace}}}{self.root}" if self.namespace else self.root
        if self.valid:
            return f"{subject}: valid"
        count = len(self.problems) + self.more
        lines = [f"{subject}: {count} schema problem{'s' if count != 1 else ''}"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        if self.more:
            lines.append(f"  - ... and {self.more} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {
            "namespace": self.namespace,
            "root": self.root,
            "valid": self.valid,
            "problems": [problem.to_dict() for problem in self.problems],
            "more_problems": self.more,
        }
