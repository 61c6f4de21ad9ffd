"""The ``paper_claims`` table: paper claims registered as aggregates (``gateway.paper``)."""

from __future__ import annotations

from datetime import date

from gateway.records import PaperClaim
from gateway.store.engine import Engine, Row
from gateway.store.rows import stored_moment

__all__ = ["StoredPaperClaims"]

_COLUMNS = (
    "id, practice_her, submission, period_from, period_to, practice_type, bills, refund_ore, "
    "registered_at, registered_by"
)


class StoredPaperClaims:
    """Every registered paper submission; a registration is never edited."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(self, claim: PaperClaim, *, by: str) -> int | None:
        """Store ``claim``; its id, or None when the practice's submission is registered
        already (registering the same submission twice is a no-op, never a second refund)."""
        with self._engine.transaction(f"could not register paper claim {claim.submission}") as tx:
            if tx.one(
                "SELECT 1 FROM paper_claims WHERE practice_her = ? AND submission = ?",
                (claim.practice_her, claim.submission),
            ):
                return None
            return tx.insert(
                "INSERT INTO paper_claims(practice_her, submission, period_from, period_to, "
                "practice_type, bills, refund_ore, registered_at, registered_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    claim.practice_her,
                    claim.submission,
                    claim.period_from.isoformat(),
                    claim.period_to.isoformat(),
                    claim.practice_type,
                    claim.bills,
                    claim.refund_ore,
                    stored_moment(),
                    by,
                ),
            )

    def all(self) -> list[PaperClaim]:
        """Every registration, oldest first."""
        rows = self._engine.rows(f"SELECT {_COLUMNS} FROM paper_claims ORDER BY id")
        return [_claim(row) for row in rows]


def _claim(row: Row) -> PaperClaim:
    return PaperClaim(
        practice_her=str(row[1]),
        submission=str(row[2]),
        period_from=date.fromisoformat(str(row[3])),
        period_to=date.fromisoformat(str(row[4])),
        practice_type=None if row[5] is None else str(row[5]),
        bills=int(row[6]),
        refund_ore=int(row[7]),
        paper_id=int(row[0]),
    )
