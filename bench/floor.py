"""The one piece of floor work both benchmarks share: build and sign an OK AppRec.

The floor is what no gateway can skip for a message; the claim's MsgHead is known from
generation, so the floor does not even read it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lxml import etree

import gateway
from gateway.claims.model import MsgHead, Organisation
from gateway.receipts.apprec import AppRec, AppRecStatus, build_apprec, wrap_in_msghead
from gateway.security.xmldsig import Signer


def signed_ok_apprec(head: MsgHead, us: Organisation, signer: Signer, now: datetime) -> bytes:
    """A signed MsgHead carrying an OK AppRec for ``head`` (``now``: local, naive)."""
    apprec = AppRec(
        id=str(uuid.uuid4()),
        gen_date=now,
        sender=us,
        receiver=head.sender,
        status=AppRecStatus.OK,
        errors=(),
        original_msg_type=head.msg_type,
        original_issue_date=head.gen_date,
        original_msg_id=head.msg_id,
        software_name="gateway",
        software_version=gateway.__version__,
    )
    carrier = wrap_in_msghead(
        build_apprec(apprec),
        msg_id=str(uuid.uuid4()),
        gen_date=now,
        sender=us,
        receiver=head.sender,
    )
    return etree.tostring(signer.sign(carrier), xml_declaration=True, encoding="UTF-8")
