"""``[replies]``: how our answers are written, for everyone and per partner.

Read with the one config reader (``gateway.settings.Table``)::

    [replies]
    rule_code_system = "2.25.196460633601604657870998019269096676540"   # Error/@S of bill codes
    explain = true            # per-bill Error/@DN: the finding's own text (false: the code's)

    [replies.partners.8141253]      # one table per partner, keyed by its HER id
    apprec_carrier = "bare"         # "bare" (default) or "msghead": the AppRec in a signed MsgHead
    apprec_version = "1.1"          # "1.0" or "1.1"; default: what the partner's CPA declares

The AppRec goes **bare** unless a partner's table says ``msghead``: the health network carries the
bare ``<AppRec>`` (the official samples, the real NAV CPA), its integrity in the signed ebXML
envelope, or, as a file, in a detached CMS signature beside it. The MsgHead carrier is kept only
for a partner that explicitly needs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from gateway.receipts.apprec import AppRecVersion
from gateway.rules.codes import DEFAULT_CODE_SYSTEM
from gateway.settings import Table

__all__ = ["CARRIERS", "Carrier", "PartnerReplies", "ReplyOptions"]

Carrier = Literal["bare", "msghead"]
CARRIERS: Final[tuple[Carrier, ...]] = ("bare", "msghead")
_OID: Final = re.compile(r"[0-9]+(?:\.[0-9]+)+")
_VERSIONS: Final = tuple(version.value for version in AppRecVersion)


@dataclass(frozen=True, slots=True)
class PartnerReplies:
    """What one partner's answers look like."""

    carrier: Carrier = "bare"
    apprec_version: AppRecVersion | None = None
    """None: the version the partner's CPA declares for the answer (else 1.0)."""


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    """The ``[replies]`` table."""

    rule_code_system: str = DEFAULT_CODE_SYSTEM
    explain: bool = True
    partners: Mapping[str, PartnerReplies] = field(default_factory=dict)

    def for_partner(self, her_id: str | None) -> PartnerReplies:
        """The partner's own settings, else the defaults."""
        return self.partners.get(her_id or "", _DEFAULT)

    @classmethod
    def from_table(cls, table: Table) -> ReplyOptions:
        """Read ``[replies]`` (empty: the defaults); ``ConfigurationError`` names the bad key."""
        table.only(("rule_code_system", "explain", "partners"))
        system = table.string("rule_code_system", DEFAULT_CODE_SYSTEM)
        if not _OID.fullmatch(system):
            raise table.fail("rule_code_system", "an OID (digits and dots, e.g. 2.16.578.1...)")
        partners_table = table.table("partners")
        partners: dict[str, PartnerReplies] = {}
        for her_id in partners_table.data:
            if not str(her_id).isdigit():
                raise partners_table.error(
                    f"{partners_table.key(str(her_id))}: partners are keyed by HER id (digits)"
                )
            partners[str(her_id)] = _partner(partners_table.table(str(her_id)))
        return cls(
            rule_code_system=system, explain=table.boolean("explain", True), partners=partners
        )


def _partner(table: Table) -> PartnerReplies:
    table.only(("apprec_carrier", "apprec_version"))
    carrier = table.choice("apprec_carrier", CARRIERS, "bare")
    version = None
    if "apprec_version" in table:
        text = table.choice("apprec_version", _VERSIONS, _VERSIONS[0])
        version = AppRecVersion(text)
    return PartnerReplies(carrier=carrier, apprec_version=version)


_DEFAULT: Final = PartnerReplies()
