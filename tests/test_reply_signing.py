"""Which replies are signed: what the agreement asks for (the default), or every one."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage
from gateway.errors import ConfigurationError, SecurityFailure
from gateway.partners.checks import Agreement, check_header
from gateway.partners.registry import PartnerRegistry
from gateway.pipeline import Pipeline
from gateway.receipts.options import PartnerReplies, ReplyOptions
from gateway.receipts.signing import (
    ALL_SIGNED,
    DOCUMENT_ONLY,
    ReplySignatures,
    ReplySigning,
    reply_signing_of,
    required_signatures,
)
from gateway.records import PendingReply
from gateway.security.signatures import verify_ebxml_envelope
from gateway.security.xmldsig import Signer, verify
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.cpa import DEFAULT_US, CpaSpec, write_cpa
from gateway.testing.messages import ebxml_message, open_reply
from tests.support.pki import TestPki

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(now=AT)


def incoming(*, ack_requested: bool = True) -> EbxmlMessage:
    head, krav = make_claim(
        rng=random.Random(1),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 5, 4, 9, 0),
    )
    raw = ebxml_message(
        msghead_with_bkm(head, krav), ack_requested=ack_requested, rng=random.Random(2)
    )
    return parse_envelope(mime.unwrap(raw).envelope.body)


def agreement(tmp_path: Path, pki: TestPki, *, we_sign: bool) -> Agreement:
    us = DEFAULT_US
    if we_sign:
        us = dataclasses.replace(us, signing_certificate=pki.gateway.certificate)
    write_cpa(tmp_path, CpaSpec(cpa_id="nav:qass:35065", us=us))
    registry = PartnerRegistry.load(tmp_path)
    header = incoming().header
    return check_header(
        header, registry, "79768", service=header.service, action=header.action, at=AT
    )


def test_without_a_cpa_only_the_apprec_and_an_asked_for_signed_ack_are_signed() -> None:
    asked = incoming(ack_requested=True)
    signatures = required_signatures(ReplySigning.AGREED, None, asked, partners=False)
    assert signatures == ReplySignatures(document=True, envelope=False, acknowledgment=True)
    assert signatures.count(ebxml=True, acknowledged=True) == 2
    unasked = incoming(ack_requested=False)
    assert required_signatures(ReplySigning.AGREED, None, unasked, partners=False) == DOCUMENT_ONLY
    assert DOCUMENT_ONLY.count(ebxml=True, acknowledged=False) == 1
    # A bare MsgHead dropped in the spool: no envelope, no acknowledgment.
    assert required_signatures(ReplySigning.AGREED, None, None, partners=False) == DOCUMENT_ONLY


def test_a_cpa_where_we_sign_what_we_send_gets_signed_envelopes(
    tmp_path: Path, pki: TestPki
) -> None:
    signing = agreement(tmp_path, pki, we_sign=True)
    signatures = required_signatures(
        ReplySigning.AGREED,
        signing,
        incoming(ack_requested=False),
        partners=True,
        reply_service="BehandlerKrav",
        reply_action="Svarmelding",
    )
    assert signatures == ALL_SIGNED
    # A bare AppRec: its envelope's signature is its own, one for both; a MsgHead carrier: two.
    assert signatures.count(ebxml=True, acknowledged=True) == 2
    assert signatures.count(ebxml=True, acknowledged=True, bare=False) == 3


def test_a_cpa_without_our_signing_certificate_asks_for_no_envelope_signature(
    tmp_path: Path, pki: TestPki
) -> None:
    plain = agreement(tmp_path, pki, we_sign=False)
    signatures = required_signatures(
        ReplySigning.AGREED,
        plain,
        incoming(ack_requested=False),
        partners=True,
        reply_service="BehandlerKrav",
        reply_action="Svarmelding",
    )
    assert signatures == DOCUMENT_ONLY


def test_all_signs_everything_whatever_the_agreement_says(tmp_path: Path, pki: TestPki) -> None:
    for who in (None, agreement(tmp_path, pki, we_sign=False)):
        for partners in (False, True):
            assert required_signatures(ReplySigning.ALL, who, None, partners=partners) == ALL_SIGNED


def test_with_partners_a_message_no_agreement_covers_gets_signed_envelopes() -> None:
    """An unknown CPA or a stranger: we cannot know what the sender's MSH expects."""
    signatures = required_signatures(
        ReplySigning.AGREED, None, incoming(ack_requested=False), partners=True
    )
    assert signatures == ALL_SIGNED


def _answer_a_claim_asking_for_a_signed_ack(pipeline: Pipeline) -> dict[str, PendingReply]:
    head, krav = make_claim(
        rng=random.Random(3),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 5, 4, 9, 0),
    )
    raw = ebxml_message(msghead_with_bkm(head, krav), rng=random.Random(4))
    pipeline.handle(raw, source="spool", source_ref="r1", source_name="r1.msg")
    return {r.kind: r for r in pipeline.store.outbox.pending_replies()}


def test_the_embedded_default_signs_the_apprec_and_the_asked_for_ack_only(
    make_pipeline: Callable[..., Pipeline], signer: Signer
) -> None:
    """Through the pipeline: no partners, a claim asking for a signed ack. The bare AppRec's
    signature is its envelope's (over the payload part); the ack's envelope is signed too."""
    replies = _answer_a_claim_asking_for_a_signed_ack(make_pipeline())
    assert set(replies) == {"acknowledgment", "apprec"}
    now = datetime.now(UTC)
    ack = mime.unwrap(replies["acknowledgment"].body)
    verify_ebxml_envelope(ack.envelope.body, {}, signer.certificate, now)
    opened = open_reply(replies["apprec"].body, signer.certificate, at=now)
    assert opened.apprec is not None and opened.apprec.tag.endswith("AppRec")


def test_a_msghead_carrier_is_signed_itself_and_its_envelope_only_if_agreed(
    make_pipeline: Callable[..., Pipeline], signer: Signer
) -> None:
    """A partner configured for the MsgHead carrier, no CPA: the MsgHead carries the AppRec's
    signature (enveloped), so its ebXML envelope, which no agreement asks for, goes unsigned."""
    pipeline = make_pipeline()
    sender = default_sender().her_id or ""
    pipeline.replies = ReplyOptions(partners={sender: PartnerReplies(carrier="msghead")})
    replies = _answer_a_claim_asking_for_a_signed_ack(pipeline)
    now = datetime.now(UTC)
    apprec = mime.unwrap(replies["apprec"].body)
    parts = {p.content_id or "": p.body for p in apprec.attachments}
    with pytest.raises(SecurityFailure, match="ikke signert"):
        verify_ebxml_envelope(apprec.envelope.body, parts, signer.certificate, now)
    (part,) = apprec.attachments
    assert verify(part.body, signer.cert_pem).tag.endswith("MsgHead")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ReplySigning.AGREED), ("agreed", ReplySigning.AGREED), ("all", ReplySigning.ALL)],
)
def test_the_choice_is_read_from_the_signing_table(
    tmp_path: Path, value: str | None, expected: ReplySigning
) -> None:
    assert reply_signing_of(config(tmp_path, value)) is expected


def test_an_unknown_choice_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"signing\.replies"):
        reply_signing_of(config(tmp_path, "some"))


def config(tmp_path: Path, replies: str | None) -> Config:
    signing = {"key_file": "k.pem", "cert_file": "c.pem"}
    if replies is not None:
        signing["replies"] = replies
    data = {
        "identity": {"name": "HELFO test", "her_id": "79768"},
        "database": {"path": "gateway.sqlite3"},
        "spool": {"directory": "spool"},
        "outbox": {"directory": "outbox"},
        "signing": signing,
    }
    return Config.from_mapping(data, tmp_path / "gateway.toml")
