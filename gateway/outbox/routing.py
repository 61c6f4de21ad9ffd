"""Where an outbound message goes, and how it is resent: from the partners' CPAs.

A reply row's ``recipient`` is a mail address (taken from the partner's CPA, or from the claim
mail's From header without a CPA) or ``HER:<id>`` (a party known only by its HER id, such as a
payout receiver). The SMTP sender resolves it to an envelope address here, and the ack tracker
asks here for the partner's Retries / RetryInterval / PersistDuration.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.outbox.reliability import DEFAULT_POLICY, RetryPolicy
from gateway.partners.registry import PartnerNotFound, PartnerRegistry

_HER_PREFIX = "HER:"


class Routing:
    """Resolves recipients and retry policies through the registry in force (read on every
    call, so a SIGHUP reload takes effect at once)."""

    def __init__(self, our_her: str, registry: Callable[[], PartnerRegistry | None]) -> None:
        self.our_her = our_her
        self.registry = registry

    def resolve(self, recipient: str) -> str | None:
        """The envelope address for ``recipient``; None when no CPA names one."""
        if "@" in recipient and not recipient.startswith(_HER_PREFIX):
            return recipient
        her = self._her_of(recipient)
        registry = self.registry()
        if her is None or registry is None:
            return None
        try:
            return registry.mail_address(self.our_her, her)
        except PartnerNotFound:
            return None

    def policy_for(self, recipient: str) -> RetryPolicy:
        """The partner's resend policy from its CPA; the ebMS default when none is known."""
        registry = self.registry()
        her = self._her_of(recipient) or self._her_by_address(recipient)
        if registry is None or her is None:
            return DEFAULT_POLICY
        try:
            policy = registry.retry_policy(self.our_her, her)
        except PartnerNotFound:
            return DEFAULT_POLICY
        if policy is None:
            # The CPA asks for no reliable messaging: send once, never resend.
            return RetryPolicy(0, DEFAULT_POLICY.interval, DEFAULT_POLICY.time_to_live)
        return RetryPolicy(
            retries=policy.retries,
            interval=policy.interval,
            time_to_live=policy.persist_duration or DEFAULT_POLICY.time_to_live,
        )

    @staticmethod
    def _her_of(recipient: str) -> str | None:
        if recipient.startswith(_HER_PREFIX) and recipient[len(_HER_PREFIX) :].isdigit():
            return recipient[len(_HER_PREFIX) :]
        return None

    def _her_by_address(self, address: str) -> str | None:
        registry = self.registry()
        if registry is None or "@" not in address:
            return None
        for cpa in registry:
            for party in cpa.parties:
                if party.her_id == self.our_her:
                    continue
                for channel in party.channels.values():
                    if (channel.mail_address or "").lower() == address.lower():
                        return party.her_id
        return None


__all__ = ["Routing"]
