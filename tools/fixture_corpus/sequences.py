"""The sequences: messages run in order on one store (duplicates, credits, retries)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from fixture_corpus.building import (
    FUTURE,
    OTHER_HER,
    SequenceSpec,
    Step,
    accepted,
    bill_rejected,
    claim,
    new_uuid,
    rng_for,
    route_for,
    wrap,
)
from gateway.claims.model import (
    Enkeltregning,
    Takst,
)
from gateway.testing.claims import (
    make_bill,
)


def credit_of(bill: Enkeltregning) -> Enkeltregning:
    return dataclasses.replace(bill, kreditering=True)


def sequences() -> list[SequenceSpec]:
    out: list[SequenceSpec] = []
    start = datetime(2026, 10, 13, 9)

    # The same file twice: the second is answered with the stored replies, byte for byte.
    c = claim("same-message-twice", "lege", 3, start)
    first_msg = wrap(c)
    out.append(
        SequenceSpec(
            "same-message-twice",
            "the same ebXML message twice: the stored replies again, byte-identical",
            (
                accepted("01-claim.msg", first_msg),
                Step(
                    "02-same-claim-again.msg",
                    first_msg,
                    "duplicate",
                    acknowledgment=True,
                    same_replies_as="01-claim.msg",
                ),
            ),
        )
    )

    # The same MsgHead in a new ebXML message (a resend by the sender's EPJ).
    c = claim("msghead-resent-new-ebxml-id", "tannlege", 2, start)
    out.append(
        SequenceSpec(
            "msghead-resent-new-ebxml-id",
            "the same MsgHead (sender HER + MsgId) in a new ebXML message: the stored AppRec "
            "again, with a new acknowledgment",
            (
                accepted("01-claim.msg", wrap(c)),
                Step(
                    "02-same-msghead-new-messageid.msg",
                    wrap(c, minutes=30),
                    "duplicate",
                    acknowledgment=True,
                    same_apprec_as="01-claim.msg",
                ),
            ),
        )
    )

    # Bare MsgHead twice.
    c = claim("bare-msghead-twice", "psykolog", 2, start)
    out.append(
        SequenceSpec(
            "bare-msghead-twice",
            "the same bare MsgHead twice: the stored AppRec again",
            (
                Step("01-claim.xml", c.payload(), "accepted", 1),
                Step(
                    "02-same-claim-again.xml",
                    c.payload(),
                    "duplicate",
                    same_apprec_as="01-claim.xml",
                ),
            ),
        )
    )

    # An approved bill, then its whole credit.
    c = claim("approve-then-credit", "tannlege", 2, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    out.append(
        SequenceSpec(
            "approve-then-credit",
            "two approved bills, then a credit of the first, whole: approved",
            (
                accepted("01-claim.msg", wrap(c)),
                accepted("02-credit-whole-bill.msg", wrap(credit, minutes=90)),
            ),
        )
    )

    # A credit of a bill never received.
    c = claim("credit-unknown-bill", "lege", 2, start)
    rng = rng_for("credit-unknown-bill/stranger")
    stranger = make_bill(
        rng=rng, practitioner="lege", dato_tid=datetime(2026, 10, 2, 10), regning_nr="77001"
    )
    credit = c.next_message().with_bills([credit_of(stranger)])
    out.append(
        SequenceSpec(
            "credit-unknown-bill",
            "a credit of a bill that was never received: rejected (KREDITERING)",
            (
                accepted("01-claim.msg", wrap(c)),
                bill_rejected(
                    "02-credit-unknown-bill.msg",
                    wrap(credit, minutes=90),
                    2,
                    "KREDITERING",
                    "77001",
                ),
            ),
        )
    )

    # A partial credit: other amount, plus an ordinary new bill.
    c = claim("partial-credit", "lege", 2, start)
    original = c.krav.regninger[0]
    takster = list(original.behandling.takster)
    takster[0] = Takst(takster[0].kode, takster[0].verdi, takster[0].antall + 1)
    changed = dataclasses.replace(
        original.behandling,
        takster=tuple(takster),
        sum_refusjon=sum((t.verdi * t.antall for t in takster), Decimal("0.00")),
    )
    partial = dataclasses.replace(credit_of(original), behandling=changed)
    fresh = make_bill(
        rng=c.rng,
        practitioner="lege",
        dato_tid=datetime(2026, 10, 20, 11),
        regning_nr="88001",
    )
    second = c.next_message().with_bills([partial, fresh])
    out.append(
        SequenceSpec(
            "partial-credit",
            "a credit that changes a takst (not the whole bill) next to a new bill: "
            "status 3, KREDITERING on the credit",
            (
                accepted("01-claim.msg", wrap(c)),
                bill_rejected(
                    "02-partial-credit-and-new-bill.msg",
                    wrap(second, minutes=90),
                    3,
                    "KREDITERING",
                    original.regning_nr,
                ),
            ),
        )
    )

    # A bill re-sent in a new message with the same Guid.
    c = claim("bill-resent-same-guid", "psykolog", 2, start)
    resent = c.krav.regninger[1]
    fresh = make_bill(
        rng=c.rng,
        practitioner="psykolog",
        dato_tid=datetime(2026, 10, 21, 9),
        regning_nr="66001",
    )
    second = c.next_message().with_bills([resent, fresh])
    out.append(
        SequenceSpec(
            "bill-resent-same-guid",
            "an approved bill sent again (same Guid) in a new message with a new bill: "
            "status 3, DUPLIKAT on the resent bill",
            (
                accepted("01-claim.msg", wrap(c)),
                bill_rejected(
                    "02-resent-bill-and-new-bill.msg",
                    wrap(second, minutes=90),
                    3,
                    "DUPLIKAT",
                    resent.regning_nr,
                ),
            ),
        )
    )

    # Credit twice.
    c = claim("credit-twice", "tannlege", 1, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    again = credit.next_message()
    out.append(
        SequenceSpec(
            "credit-twice",
            "a bill, its credit, then the same credit in a new message: rejected (KREDITERING)",
            (
                accepted("01-claim.msg", wrap(c)),
                accepted("02-credit.msg", wrap(credit, minutes=90)),
                bill_rejected(
                    "03-credit-again.msg",
                    wrap(again, minutes=180),
                    2,
                    "KREDITERING",
                    c.krav.regninger[0].regning_nr,
                ),
            ),
        )
    )

    # A MessageError does not record the message: a corrected retry with the same id is new.
    c = claim("retry-after-message-error", "lab", 3, start)
    message_id = f"{new_uuid(c.rng)}@lab.avsender.test"
    wrong = wrap(c, route=route_for("lab", to_her=OTHER_HER), message_id=message_id)
    right = wrap(c, message_id=message_id, minutes=5)
    out.append(
        SequenceSpec(
            "retry-after-message-error",
            "wrong eb:To (MessageError), then the corrected message with the same MessageId: "
            "processed afresh",
            (
                Step(
                    "01-wrong-to-her.msg",
                    wrong,
                    "ebxml_error",
                    ebxml_error="ValueNotRecognized",
                ),
                accepted("02-corrected.msg", right),
            ),
        )
    )

    # The same ebXML MessageId with other content.
    c = claim("messageid-reused-other-content", "lege", 2, start)
    message_id = f"{new_uuid(c.rng)}@lege.avsender.test"
    other = claim("messageid-reused-other-content/other", "lege", 1, datetime(2026, 10, 14, 9))
    out.append(
        SequenceSpec(
            "messageid-reused-other-content",
            "a second message reusing an accepted message's MessageId with other content: "
            "MessageError Inconsistent",
            (
                accepted("01-claim.msg", wrap(c, message_id=message_id)),
                Step(
                    "02-other-claim-same-messageid.msg",
                    wrap(other, message_id=message_id, minutes=60),
                    "ebxml_error",
                    ebxml_error="Inconsistent",
                ),
            ),
        )
    )

    # Re-billing a credited bill with its old Guid (the rule's guidance asks for a new Guid).
    c = claim("rebill-after-credit", "tannlege", 1, start)
    credit = c.next_message().with_bills([credit_of(c.krav.regninger[0])])
    rebill = credit.next_message().with_bills([c.krav.regninger[0]])
    out.append(
        SequenceSpec(
            "rebill-after-credit",
            "a bill, its whole credit, then the same bill (same Guid) again: approved, since "
            "the credited original is no longer live",
            (
                accepted("01-claim.msg", wrap(c)),
                accepted("02-credit.msg", wrap(credit, minutes=90)),
                accepted("03-same-bill-again.msg", wrap(rebill, minutes=180)),
            ),
        )
    )

    # A bill rejected for its date, sent again with the date corrected and the same Guid.
    c = claim("rejected-bill-corrected", "lege", 3, start)
    late = dataclasses.replace(c.krav.regninger[2], dato_tid=FUTURE)
    first_claim = c.with_bills([*c.krav.regninger[:2], late])
    fixed = dataclasses.replace(late, dato_tid=datetime(2026, 10, 16, 14))
    second = first_claim.next_message().with_bills([fixed])
    out.append(
        SequenceSpec(
            "rejected-bill-corrected",
            "a bill rejected for 766, sent again with the date corrected and the same Guid: "
            "approved (only approved bills count as duplicates)",
            (
                bill_rejected(
                    "01-claim-one-bill-in-future.msg", wrap(first_claim), 3, "766", late.regning_nr
                ),
                accepted("02-corrected-bill.msg", wrap(second, minutes=90)),
            ),
        )
    )

    # Another claim under the MsgId of an accepted one (an EPJ that reuses MsgIds).
    c = claim("msgid-reused-other-content", "lege", 2, start)
    other = claim("msgid-reused-other-content/other", "lege", 3, datetime(2026, 10, 19, 9))
    other = dataclasses.replace(other, head=dataclasses.replace(other.head, msg_id=c.head.msg_id))
    out.append(
        SequenceSpec(
            "msgid-reused-other-content",
            "a different claim (other bills) reusing an accepted message's MsgHead MsgId in a "
            "new ebXML message: must be rejected, not answered with the first claim's AppRec",
            (
                accepted("01-claim.msg", wrap(c)),
                bill_rejected("02-other-claim-same-msgid.msg", wrap(other, minutes=60), 2, "E10"),
            ),
        )
    )
    return out
