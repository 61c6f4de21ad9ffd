"""Replies the health network can read (issue 11), through the pipeline with a partner's CPA.

The AppRec goes bare, in the version and packaging the partner's CPA declares, with
DuplicateElimination where the CPA says so; every Error is complete and one per finding;
OriginalMsgId names the claim's MsgHead whenever it could be read; a signed acknowledgment
carries the claim's ``ds:Reference`` copies (stored, so a duplicate gets the identical ack);
a partner's Ping and StatusRequest are answered. The MsgHead carrier is a per-partner option.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta

from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.compose import serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import MessageHeader, Party, PartyId
from gateway.ebxml.namespaces import BKM_NS, DS_NS, EB_NS
from gateway.ebxml.signals import build_ping, build_status_request, signature_references
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import APPREC_NS, APPREC_V1_1_NS, AppRecVersion
from gateway.receipts.decode import DETACHED_SIGNATURE, decode_reply
from gateway.receipts.options import PartnerReplies, ReplyOptions
from gateway.records import Outcome
from gateway.rules.codes import shipped_code_list
from gateway.security.signatures import sign_ebxml_envelope
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.messages import ENCRYPTED_CONTENT_TYPE, ebxml_message
from tests.support.pki import TestPki
from tests.test_pipeline_security import (
    NOW,
    PARTNER_MAIL,
    ROUTE,
    PipelineFactory,
    bill_count,
    claim,
    cpa_spec,
    handle,
    message,
    opened,
    pki,
    secured,
)

__all__ = ["pki", "secured"]  # fixtures, imported to be found here

DS = f"{{{DS_NS}}}"
EB = f"{{{EB_NS}}}"


def ar(apprec: etree._Element, path: str) -> list[etree._Element]:
    namespace = etree.QName(apprec).namespace
    return apprec.findall(path.replace("ar:", f"{{{namespace}}}"))


# --- the AppRec as the network carries it -------------------------------------------------------


def test_the_apprec_is_bare_encrypted_and_signed_as_the_cpa_says(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    head, _, payload = claim(1)
    result, (_, apprec_mail) = handle(pipeline, message(payload, pki, 1), "bare")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    reply = opened(apprec_mail, pki)  # envelope signature (cid: over the part) verified
    assert reply.content_types == (ENCRYPTED_CONTENT_TYPE.split(";")[0],)
    assert reply.msghead is None
    apprec = reply.apprec
    assert apprec is not None and apprec.tag == f"{{{APPREC_NS}}}AppRec"
    assert ar(apprec, "ar:MIGversion")[0].text == AppRecVersion.V1_0.mig_version
    assert ar(apprec, "ar:OriginalMsgId/ar:Id")[0].text == head.msg_id
    # Reliable messaging: we resend AppRecs, so DuplicateElimination as the CPA allows.
    assert reply.envelope.header.duplicate_elimination
    assert apprec_mail.recipient == PARTNER_MAIL


def test_the_cpa_declares_the_version_and_whether_duplicates_are_eliminated(
    secured: PipelineFactory, pki: TestPki
) -> None:
    spec = dataclasses.replace(
        cpa_spec(pki), apprec_namespace=APPREC_V1_1_NS, duplicate_elimination="never"
    )
    _, _, payload = claim(2)
    result, (_, apprec_mail) = handle(secured(spec), message(payload, pki, 2), "v11")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    reply = opened(apprec_mail, pki)
    assert reply.apprec is not None and reply.apprec.tag == f"{{{APPREC_V1_1_NS}}}AppRec"
    assert not reply.envelope.header.duplicate_elimination


def test_a_partner_may_be_given_the_msghead_carrier_and_another_version(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    pipeline.replies = ReplyOptions(
        partners={"8141253": PartnerReplies(carrier="msghead", apprec_version=AppRecVersion.V1_1)}
    )
    _, _, payload = claim(3)
    result, (_, apprec_mail) = handle(pipeline, message(payload, pki, 3), "carrier")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    reply = opened(apprec_mail, pki)  # verifies the MsgHead's own signature too
    assert reply.msghead is not None
    assert reply.apprec is not None and reply.apprec.tag == f"{{{APPREC_V1_1_NS}}}AppRec"


def test_every_error_has_s_a_listed_number_dn_and_the_bills_regningnr(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    pipeline.replies = ReplyOptions(rule_code_system="2.16.578.1.12.4.1.1.9999")
    head, krav, _ = claim(4, bills=3)
    bills = list(krav.regninger)
    future = NOW.replace(tzinfo=None) + timedelta(days=30)
    late = bills[1] = dataclasses.replace(bills[1], dato_tid=future)
    twice = bills[2] = dataclasses.replace(bills[2], guid=bills[0].guid)
    payload = msghead_with_bkm(head, dataclasses.replace(krav, regninger=tuple(bills)))
    result, (_, apprec_mail) = handle(pipeline, message(payload, pki, 4), "errors")
    assert result.outcome is Outcome.PARTIALLY_ACCEPTED, result.detail
    apprec = opened(apprec_mail, pki).apprec
    assert apprec is not None
    errors = ar(apprec, "ar:Error")
    codes = shipped_code_list()
    findings = _findings(pipeline, result.received_id)
    assert len(errors) == len(findings) >= 2  # one Error per refusing finding
    for error, (regning_nr, code) in zip(errors, findings, strict=True):
        assert error.get("S") == "2.16.578.1.12.4.1.1.9999"
        assert error.get("V") == codes.merknad(code).value
        assert error.get("OT") == regning_nr and error.get("DN")
    assert {e.get("OT") for e in errors} == {late.regning_nr, twice.regning_nr}


def _findings(pipeline: Pipeline, received_id: int) -> list[tuple[str, str]]:
    """(RegningNr, code) of each refusing finding of the message's rejected bills."""
    rows = pipeline.store.engine.rows(
        "SELECT b.regning_nr, f.code FROM findings f JOIN bills b ON b.id = f.bill_id "
        "JOIN messages m ON m.id = b.message_id WHERE m.received_id = ? "
        "AND b.status = 'avvist' AND f.severity != 'warning' ORDER BY b.position, f.id",
        (received_id,),
    )
    return [(str(r[0]), str(r[1])) for r in rows]


# --- OriginalMsgId ------------------------------------------------------------------------------


def test_original_msg_id_names_the_msghead_also_for_s01(
    secured: PipelineFactory, pki: TestPki
) -> None:
    head, _, payload = claim(5)
    signed = pki.partner.signer().sign(etree.fromstring(payload))
    tampered = serialize(signed).replace(b"<Antall>", b"<Antall>1", 1)
    raw = ebxml_message(
        tampered,
        route=ROUTE,
        rng=random.Random(5),
        timestamp=NOW - timedelta(minutes=5),
        encrypt_to=pki.gateway.certificate,
    )
    result, (_, apprec_mail) = handle(secured(), raw, "s01")
    assert result.outcome is Outcome.REJECTED
    apprec = opened(apprec_mail, pki).apprec
    assert apprec is not None
    assert [e.get("V") for e in ar(apprec, "ar:Error")] == ["S01"]
    assert ar(apprec, "ar:OriginalMsgId/ar:Id")[0].text == head.msg_id
    assert ar(apprec, "ar:OriginalMsgId/ar:MsgType")[0].get("V") == head.msg_type.value
    issued = ar(apprec, "ar:OriginalMsgId/ar:IssueDate")[0].text
    assert issued == head.gen_date.replace(microsecond=0).isoformat()
    # Never remembered unverified: the real claim with that MsgId is still taken.
    assert handle(secured(), message(payload, pki, 55), "real")[0].outcome is Outcome.ACCEPTED


def test_original_msg_id_names_the_msghead_for_t10_and_the_ebxml_id_when_unreadable(
    secured: PipelineFactory, pki: TestPki
) -> None:
    head, _, payload = claim(6)
    other = payload.replace(BKM_NS.encode(), b"http://example.org/annet")
    result, (_, t10) = handle(secured(), message(other, pki, 6), "t10")
    assert result.outcome is Outcome.REJECTED
    apprec = opened(t10, pki).apprec
    assert apprec is not None
    assert [e.get("V") for e in ar(apprec, "ar:Error")] == ["T10"]
    assert ar(apprec, "ar:OriginalMsgId/ar:Id")[0].text == head.msg_id

    broken = message(payload[:300], pki, 7, payload_signer=None)
    result, (_, t01) = handle(secured(), broken, "t01")
    apprec = opened(t01, pki).apprec
    assert apprec is not None
    assert [e.get("V") for e in ar(apprec, "ar:Error")] == ["T01"]
    ebxml_id = parse_envelope(mime.unwrap(broken).envelope.body).header.message_id
    assert ar(apprec, "ar:OriginalMsgId/ar:Id")[0].text == ebxml_id


# --- signed acknowledgments ---------------------------------------------------------------------


def test_a_signed_ack_carries_the_references_and_a_duplicate_gets_it_again(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    _, _, payload = claim(8)
    raw = message(payload, pki, 8)
    result, (ack, _) = handle(pipeline, raw, "ack")
    expected = signature_references(mime.unwrap(raw).envelope.body)
    assert len(expected) == 2  # the envelope and the payload part
    ack_envelope = opened(ack, pki).envelope  # our signature over the ack verified
    assert ack_envelope.header.action == "Acknowledgment"
    copies = etree.fromstring(mime.unwrap(ack.body).envelope.body).findall(
        f".//{EB}Acknowledgment/{DS}Reference"
    )
    def digests(references: list[etree._Element]) -> list[tuple[str | None, str | None]]:
        return [(r.get("URI"), r.findtext(f"{DS}DigestValue")) for r in references]

    assert digests(copies) == digests([etree.fromstring(r) for r in expected])
    [(stored,)] = pipeline.store.engine.rows(
        "SELECT signature_references FROM received WHERE id = ?", (result.received_id,)
    )
    assert [r.encode() for r in json.loads(stored)] == list(expected)
    again, replies = handle(pipeline, raw, "ack-again")
    assert again.outcome is Outcome.DUPLICATE
    assert replies[0].body == ack.body  # the identical acknowledgment


def test_an_unsigned_message_gets_an_ack_without_references(
    secured: PipelineFactory, pki: TestPki
) -> None:
    _, _, payload = claim(9)
    result, (ack, _) = handle(secured(), message(payload, pki, 9, envelope_signer=None), "plain")
    assert result.outcome is Outcome.ACCEPTED
    envelope = etree.fromstring(mime.unwrap(ack.body).envelope.body)
    (acknowledgment,) = envelope.iter(f"{EB}Acknowledgment")
    assert acknowledgment.find(f"{DS}Reference") is None


# --- Ping and StatusRequest ---------------------------------------------------------------------


def msh_message(envelope: bytes, pki: TestPki, *, signed: bool = True) -> bytes:
    if signed:
        envelope = serialize(sign_ebxml_envelope(envelope, pki.partner.signer(), {}))
    return mime.build(
        envelope,
        [],
        mail_from=ROUTE.mail_from,
        mail_to=ROUTE.mail_to,
        subject="ebXML",
        message_id="<msh@sender.test>",
        date=NOW,
    )


def partner_header(message_id: str, *, cpa_id: str = ROUTE.cpa_id) -> MessageHeader:
    return MessageHeader(
        from_party=Party((PartyId(ROUTE.from_her, "HER"),), None),
        to_party=Party((PartyId(ROUTE.to_her, "HER"),), None),
        cpa_id=cpa_id,
        conversation_id="c-1",
        service="x",
        service_type=None,
        action="x",
        message_id=message_id,
        timestamp=NOW - timedelta(minutes=1),
    )


def test_a_ping_from_a_partner_is_answered_with_a_pong(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    raw = msh_message(build_ping(partner_header("ping-1")), pki)
    result, (pong,) = handle(pipeline, raw, "ping")
    assert result.outcome is Outcome.SIGNAL
    envelope = opened(pong, pki).envelope
    assert (envelope.header.action, envelope.header.ref_to_message_id) == ("Pong", "ping-1")
    assert pong.recipient == PARTNER_MAIL
    # A ping from no partner of ours is an ebXML error, not a Pong.
    stranger = msh_message(build_ping(partner_header("ping-2", cpa_id="nobody")), pki)
    result, (error,) = handle(pipeline, stranger, "ping-stranger")
    assert result.outcome is Outcome.EBXML_ERROR
    assert parse_envelope(mime.unwrap(error.body).envelope.body).error_list[0].code == (
        "ValueNotRecognized"
    )


def test_a_status_request_is_answered_with_the_status_of_the_message(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    _, _, payload = claim(10)
    raw = message(payload, pki, 10)
    claim_id = parse_envelope(mime.unwrap(raw).envelope.body).header.message_id
    handle(pipeline, raw, "claim")

    def status(asked: str, seed: str) -> tuple[str | None, str | None]:
        request = build_status_request(partner_header(f"status-{seed}"), asked)
        result, (response,) = handle(pipeline, msh_message(request, pki), f"status-{seed}")
        assert result.outcome is Outcome.SIGNAL
        opened(response, pki)  # signed by us
        body = etree.fromstring(mime.unwrap(response.body).envelope.body)
        (element,) = body.iter(f"{EB}StatusResponse")
        return element.get(f"{EB}messageStatus"), element.findtext(f"{EB}Timestamp")

    processed, when = status(claim_id, "a")
    assert processed == "Processed" and when is not None and when.startswith("2026-11-23")
    assert status("never-sent", "b") == ("NotRecognized", None)
    with pipeline.store.engine.transaction("another sender") as tx:
        tx.execute(
            "UPDATE messages SET from_her = '1234567' WHERE ebxml_message_id = ?", (claim_id,)
        )
    assert status(claim_id, "c") == ("UnAuthorized", None)


def test_without_partners_a_ping_is_not_answered_with_a_pong(
    make_pipeline: PipelineFactory, pki: TestPki
) -> None:
    raw = msh_message(build_ping(partner_header("ping-3")), pki, signed=False)
    result, (reply,) = handle(make_pipeline(), raw, "ping-no-cpa")
    assert result.outcome is Outcome.EBXML_ERROR
    assert parse_envelope(mime.unwrap(reply.body).envelope.body).header.action == "MessageError"


# --- a bare MsgHead when partners are configured (issue 12: fail closed) -------------------------


def test_a_bare_msghead_from_a_partner_must_carry_its_signature(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    _, krav, payload = claim(11)
    result, (refusal, _) = handle(pipeline, payload, "bare-unsigned")
    assert result.outcome is Outcome.REJECTED
    errors = etree.fromstring(refusal.body).findall(f"{{{APPREC_NS}}}Error")
    assert [e.get("V") for e in errors] == ["S01"]
    assert bill_count(pipeline.store) == 0
    signed = serialize(pki.partner.signer().sign(etree.fromstring(payload)))
    result, (apprec_file, signature) = handle(pipeline, signed, "bare-signed")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert signature.filename == apprec_file.filename + ".p7s"
    assert bill_count(pipeline.store) == len(krav.regninger)


def test_a_bare_msghead_from_a_sender_without_a_cpa_is_refused(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    head, krav = make_claim(
        rng=random.Random(12),
        practitioner="lege",
        bills=2,
        sender=default_sender("9999999"),
        receiver=default_receiver(),
        start=NOW.replace(tzinfo=None) - timedelta(days=20),
    )
    payload = serialize(pki.partner.signer().sign(etree.fromstring(msghead_with_bkm(head, krav))))
    result, (apprec_file, _) = handle(pipeline, payload, "stranger")
    assert result.outcome is Outcome.REJECTED
    assert "UnknownSender" in (result.detail or "")
    errors = etree.fromstring(apprec_file.body).findall(f"{{{APPREC_NS}}}Error")
    assert [(e.get("V"), e.get("S")) for e in errors] == [("X99", "2.16.578.1.12.4.1.1.8221")]
    assert "9999999" in (errors[0].get("OT") or "")
    assert bill_count(pipeline.store) == 0


def test_the_reply_decoder_reads_bare_apprecs_of_either_version_and_names_the_signature(
    secured: PipelineFactory, pki: TestPki
) -> None:
    pipeline = secured()
    pipeline.replies = ReplyOptions(
        partners={"8141253": PartnerReplies(apprec_version=AppRecVersion.V1_1)}
    )
    _, _, payload = claim(13)
    signed = serialize(pki.partner.signer().sign(etree.fromstring(payload)))
    _, (apprec_file, signature) = handle(pipeline, signed, "decoded")
    decoded = decode_reply(apprec_file.body)
    (said,) = decoded.said
    assert (said.kind, said.code) == ("apprec", "1")
    assert decoded.documents[0].part == "apprec"
    assert f'xmlns="{APPREC_V1_1_NS}"' in decoded.documents[0].xml
    (document,) = decode_reply(signature.body).documents
    assert document.xml == DETACHED_SIGNATURE
