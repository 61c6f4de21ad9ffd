"""The values sending a payout run passes around: what it needs, what it stored, what it did.

``gateway.payout.sending`` re-exports them; kept apart so the message builder
(``gateway.payout.message``) can use them without importing the sending steps.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from gateway.clock import utc_now
from gateway.config import IdentityConfig
from gateway.partners.registry import PartnerRegistry
from gateway.payout.recipients import Recipients
from gateway.security.xmldsig import Signer

__all__ = ["HeldDecision", "PayoutDeps", "RunOutcome", "StoredDecision"]


@dataclass(frozen=True)
class PayoutDeps:
    """What composing, signing and sending decisions needs (built once by the caller)."""

    identity: IdentityConfig
    signer: Signer
    secret: bytes  # for pseudonymous patient references (compose.reference_secret)
    registry: Recipients  # payees from the practice register
    decisions_directory: Path
    payments_directory: Path
    payer_account: str | None
    payer_bic: str | None = None
    cpa_id: str = "gateway-payout"
    now: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    #: The partner registry in force (the daemon's, reloads included); None: no CPAs, so the
    #: decisions go with the default Service/Action as the practice register addresses them.
    partners: Callable[[], PartnerRegistry | None] = field(default=lambda: None)


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision as stored at enqueue time."""

    run_id: int
    vedtak_id: str
    receiver_her: str
    name: str
    account: str | None
    kid: str | None
    total_ore: int
    bills: int
    recipient: str
    cpa_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class HeldDecision:
    """A decision held back: the receiver's CPA does not take it (``reason``)."""

    vedtak_id: str
    run_id: int
    receiver_her: str
    reason: str
    held_at: str


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What ``process_run`` did for one run."""

    run_id: int
    run_key: str
    decisions: tuple[StoredDecision, ...]
    queued: int  # outbox rows inserted now (0 when they already existed)
    payment_file: Path | None
