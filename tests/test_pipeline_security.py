"""The pipeline with partners: CPA checks, CMS decryption, both signatures, secured replies.

Every message here is built as a real sender's MSH builds it (``gateway.testing.messages``): the
MsgHead signed, gzipped, CMS-encrypted to our certificate, and the ebXML envelope signed over the
final part. Every reply is opened as the partner would open it (``open_reply``): our envelope
signature verified, the AppRec decrypted with the partner's key and its signature verified.
Each bad message must get its exact code, and nothing of it may be approved.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from lxml import etree
from structlog.testing import capture_logs

from gateway.claims.model import BehandlerKrav, MsgHead
from gateway.config import SecurityConfig
from gateway.ebxml import mime
from gateway.ebxml.compose import serialize
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.namespaces import APPREC_NS, DS_NS, MSGHEAD_NS
from gateway.ebxml.signals import build_acknowledgment
from gateway.errors import SecurityFailure
from gateway.partners.checks import CPA_ID, FROM_PARTY_ID
from gateway.partners.registry import PartnerRegistry
from gateway.pipeline import Pipeline, Result
from gateway.records import Outcome, PendingReply
from gateway.rules.engine import RuleEngine
from gateway.rules.registry import RULES
from gateway.security import cms
from gateway.security.certificates import load_certificate_file
from gateway.security.signatures import sign_ebxml_envelope
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, write_cpa
from gateway.testing.messages import (
    ENCRYPTED_CONTENT_TYPE,
    OpenedReply,
    Route,
    ebxml_message,
    open_reply,
)
from gateway.validation.catalog import SchemaCatalog
from tests.conftest import FIXED_NOW, IDENTITY
from tests.support.pki import Credentials, TestPki

NOW = FIXED_NOW
ROUTE = Route()  # CPAId nav:qass:35065, from HER 8141253 to HER 79768
#: The partner's address in its CPA; its mails come From another one (ROUTE.mail_from).
PARTNER_MAIL = "kuhr@legekontoret.test"
AR = {"ar": APPREC_NS}
MH = f"{{{MSGHEAD_NS}}}"
DS = f"{{{DS_NS}}}"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(now=NOW)


def cpa_spec(
    pki: TestPki,
    *,
    partner: Credentials | None = None,
    partner_encryption: Credentials | None = None,
    encrypted: bool = True,
) -> CpaSpec:
    """Our CPA with the partner: our certificate both ways, the partner's (or ``partner``'s,
    and ``partner_encryption``'s for encryption)."""
    theirs = partner or pki.partner
    return CpaSpec(
        cpa_id=ROUTE.cpa_id,
        us=dataclasses.replace(
            DEFAULT_US,
            signing_certificate=pki.gateway.certificate,
            encryption_certificate=pki.gateway.certificate,
        ),
        partner=dataclasses.replace(
            DEFAULT_PARTNER,
            mail_address=PARTNER_MAIL,
            signing_certificate=theirs.certificate,
            encryption_certificate=(partner_encryption or theirs).certificate,
        ),
        encrypted=encrypted,
    )


PipelineFactory = Callable[..., Pipeline]


@pytest.fixture
def secured(
    store: Store, catalog: SchemaCatalog, pki: TestPki, tmp_path: Path
) -> PipelineFactory:
    """A pipeline with a CPA directory (written fresh per call) and our decryption key(s)."""

    def factory(
        spec: CpaSpec | None = None,
        *,
        keys: Sequence[cms.DecryptionKey] | None = None,
        security: SecurityConfig | None = None,
    ) -> Pipeline:
        directory = tmp_path / "partners"
        directory.mkdir(exist_ok=True)
        for old in directory.glob("*.xml"):
            old.unlink()
        write_cpa(directory, spec or cpa_spec(pki))
        return Pipeline(
            identity=IDENTITY,
            store=store,
            catalog=catalog,
            signer=pki.gateway.signer(),
            engine=RuleEngine(RULES),
            max_message_bytes=10 * 1024 * 1024,
            clock=lambda: NOW,
            partners=PartnerRegistry.load(directory),
            decryption_keys=[pki.gateway.decryption_key()] if keys is None else keys,
            security=security,
        )

    return factory


# --- messages ----------------------------------------------------------------------------------


def claim(seed: int, bills: int = 2) -> tuple[MsgHead, BehandlerKrav, bytes]:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=bills,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    return head, krav, msghead_with_bkm(head, krav)


#: "The usual": the partner signs, and encrypts to our current certificate.
Usual = Literal["usual"]


def message(
    payload: bytes,
    pki: TestPki,
    seed: int,
    *,
    route: Route = ROUTE,
    payload_signer: Signer | Usual | None = "usual",
    envelope_signer: Signer | Usual | None = "usual",
    encrypt_to: x509.Certificate | Usual | None = "usual",
    compress: bool = True,
) -> bytes:
    """A claim as the partner sends it: signed, gzipped, encrypted to us, envelope signed."""
    return ebxml_message(
        payload,
        route=route,
        rng=random.Random(seed),
        timestamp=NOW - timedelta(minutes=5),
        compress=compress,
        payload_signer=pki.partner.signer() if isinstance(payload_signer, str) else payload_signer,
        envelope_signer=(
            pki.partner.signer() if isinstance(envelope_signer, str) else envelope_signer
        ),
        encrypt_to=pki.gateway.certificate if isinstance(encrypt_to, str) else encrypt_to,
    )


def handle(pipeline: Pipeline, raw: bytes, ref: str) -> tuple[Result, list[PendingReply]]:
    """Process ``raw``; the result and the replies it queued."""
    before = {r.id for r in pipeline.store.outbox.pending_replies()}
    result = pipeline.handle(raw, source="spool", source_ref=ref, source_name=f"{ref}.msg")
    return result, [r for r in pipeline.store.outbox.pending_replies() if r.id not in before]


def bill_count(store: Store) -> int:
    return int(store.engine.rows("SELECT COUNT(*) FROM bills")[0][0])


def opened(reply: PendingReply, pki: TestPki) -> OpenedReply:
    """``reply`` opened by the partner: our signatures verified, decrypted with its key."""
    return open_reply(
        reply.body, pki.gateway.certificate, [pki.partner.decryption_key()], at=NOW
    )


def only_message_error(
    result: Result, replies: list[PendingReply], pki: TestPki
) -> tuple[str, str | None, str]:
    """The (code, location, description) of the one signed MessageError; nothing else sent."""
    assert result.outcome is Outcome.EBXML_ERROR, result.detail
    assert [r.kind for r in replies] == ["message_error"]
    signal = opened(replies[0], pki)
    assert signal.envelope.header.action == "MessageError"
    (error,) = signal.envelope.error_list
    return error.code, error.location, error.description


def rejected_apprec(
    result: Result, replies: list[PendingReply], pki: TestPki
) -> OpenedReply:
    """The encrypted, signed AppRec of a rejected message (after its Acknowledgment)."""
    assert result.outcome is Outcome.REJECTED, result.detail
    assert [r.kind for r in replies] == ["acknowledgment", "apprec"]
    apprec = opened(replies[1], pki)
    assert apprec.content_types == ("application/pkcs7-mime",)
    assert apprec.status == "2"
    return apprec


def base64_lines(body: bytes) -> bytes:
    """``body`` as ``mime.build`` writes it."""
    encoded = base64.b64encode(body)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def replace_body(raw: bytes, old: bytes, new: bytes) -> bytes:
    """``raw`` with the MIME part whose bytes are ``old`` carrying ``new`` instead."""
    assert raw.count(base64_lines(old)) == 1
    return raw.replace(base64_lines(old), base64_lines(new))


def replace_part(raw: bytes, new_body: bytes) -> bytes:
    """``raw`` with its one payload part's bytes replaced."""
    (part,) = mime.unwrap(raw).attachments
    return replace_body(raw, part.body, new_body)


# --- (1) the good path ---------------------------------------------------------------------------


def test_a_signed_encrypted_gzipped_claim_is_accepted_and_answered_signed_and_encrypted(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    head, krav, payload = claim(1)
    raw = message(payload, pki, 1)
    (part,) = mime.unwrap(raw).attachments
    assert part.content_type == "application/pkcs7-mime"
    assert parse_envelope(mime.unwrap(raw).envelope.body).has_signature
    incoming = parse_envelope(mime.unwrap(raw).envelope.body).header

    result, replies = handle(secured(), raw, "good")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert result.apprec_status == 1
    assert [r.kind for r in replies] == ["acknowledgment", "apprec"]
    ack_mail, apprec_mail = replies

    # Both go to the CPA's endpoint, not to the mail's From address.
    for reply in replies:
        assert reply.recipient == PARTNER_MAIL
        assert dict(mime.unwrap(reply.body).mail_headers)["To"] == PARTNER_MAIL

    ack = opened(ack_mail, pki)
    assert ack.envelope.header.action == "Acknowledgment"
    assert ack.envelope.acknowledgment_ref == incoming.message_id
    assert ack.msghead is None
    with pytest.raises(SecurityFailure):  # signed by us, not by anyone else
        open_reply(ack_mail.body, pki.partner.certificate, at=NOW)

    (encrypted,) = mime.unwrap(apprec_mail.body).attachments
    assert encrypted.content_type == "application/pkcs7-mime"
    assert ("smime-type", "enveloped-data") in encrypted.params
    with pytest.raises(SecurityFailure, match="ikke kryptert til"):  # for the partner only
        cms.decrypt(encrypted.body, [pki.gateway.decryption_key()])

    apprec = opened(apprec_mail, pki)
    header = apprec.envelope.header
    assert (header.service, header.action) == ("BehandlerKrav", "Svarmelding")
    assert header.ref_to_message_id == incoming.message_id
    assert header.cpa_id == ROUTE.cpa_id
    assert header.to_party.id_of("HER") == "8141253"
    assert apprec.envelope.ack_requested
    assert apprec.status == "1"
    assert apprec.error_codes == ()
    assert apprec.apprec is not None
    assert apprec.apprec.findtext("ar:OriginalMsgId/ar:Id", namespaces=AR) == head.msg_id
    assert bill_count(store) == len(krav.regninger)


def test_the_apprec_signature_is_checked_by_open_reply(
    secured: PipelineFactory, pki: TestPki
) -> None:
    """The helper itself can fail: another certificate, or no key for the encrypted part."""
    _, _, payload = claim(2)
    _, (_, apprec_mail) = handle(secured(), message(payload, pki, 2), "helper")
    with pytest.raises(SecurityFailure):
        open_reply(apprec_mail.body, pki.partner.certificate, [pki.partner.decryption_key()])
    with pytest.raises(ValueError, match="no decryption key"):
        open_reply(apprec_mail.body, pki.gateway.certificate, at=NOW)


# --- (2), (3) the CPA --------------------------------------------------------------------------


def test_an_unknown_cpa_id_is_value_not_recognized_at_the_cpa_id(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(3)
    raw = message(payload, pki, 3, route=dataclasses.replace(ROUTE, cpa_id="nav:qass:99999"))
    result, replies = handle(secured(), raw, "unknown-cpa")
    code, location, description = only_message_error(result, replies, pki)
    assert (code, location) == ("ValueNotRecognized", CPA_ID)
    assert "nav:qass:99999" in description
    assert bill_count(store) == 0


def test_a_sender_who_is_not_the_cpas_partner_is_inconsistent(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(4)
    raw = message(payload, pki, 4, route=dataclasses.replace(ROUTE, from_her="1234567"))
    result, replies = handle(secured(), raw, "other-sender")
    code, location, _ = only_message_error(result, replies, pki)
    assert (code, location) == ("Inconsistent", FROM_PARTY_ID)
    assert bill_count(store) == 0


# --- (4), (5) signatures and certificates --------------------------------------------------------


def test_a_msghead_signed_with_another_key_is_s01(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(5)
    stranger = pki.ca.issue("Testlegen", key_name="stranger", now=NOW)
    raw = message(payload, pki, 5, payload_signer=stranger.signer())
    result, replies = handle(secured(), raw, "foreign-key")
    assert rejected_apprec(result, replies, pki).error_codes == ("S01",)
    assert bill_count(store) == 0


def test_during_a_rollover_the_old_and_the_new_partner_certificate_both_verify(
    secured: PipelineFactory, pki: TestPki, store: Store, tmp_path: Path
) -> None:
    """The CPA names the old certificate; the operator added the new one as a rollover file."""
    new = pki.ca.issue("Testlegen (ny)", key_name="partner-new", her_id="8141253", now=NOW)
    (tmp_path / "partners").mkdir()
    (tmp_path / "partners" / "8141253.signing.pem").write_bytes(new.cert_pem)
    pipeline = secured()
    _, krav_new, payload = claim(51)
    raw = message(payload, pki, 51, payload_signer=new.signer(), envelope_signer=new.signer())
    result, _ = handle(pipeline, raw, "rollover-new")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    _, krav_old, payload = claim(52)
    result, _ = handle(pipeline, message(payload, pki, 52), "rollover-old")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert bill_count(store) == len(krav_new.regninger) + len(krav_old.regninger)


def test_an_unsigned_msghead_is_s01(secured: PipelineFactory, pki: TestPki, store: Store) -> None:
    _, _, payload = claim(6)
    result, replies = handle(secured(), message(payload, pki, 6, payload_signer=None), "unsigned")
    assert rejected_apprec(result, replies, pki).error_codes == ("S01",)
    assert bill_count(store) == 0


def expired_partner(pki: TestPki) -> Credentials:
    """The partner's key with a certificate that expired the day before NOW."""
    return pki.ca.issue(
        "Testlegen",
        key_name="partner",
        her_id="8141253",
        not_before=NOW - timedelta(days=731),
        not_after=NOW - timedelta(days=1),
    )


def test_an_expired_partner_certificate_with_a_signed_envelope_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    expired = expired_partner(pki)
    _, _, payload = claim(7)
    raw = message(
        payload, pki, 7, payload_signer=expired.signer(), envelope_signer=expired.signer()
    )
    result, replies = handle(secured(cpa_spec(pki, partner=expired)), raw, "expired-signed")
    code, _, description = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert "utløpt" in description
    assert bill_count(store) == 0


def test_an_expired_partner_certificate_with_an_unsigned_envelope_is_s02(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    expired = expired_partner(pki)
    _, _, payload = claim(8)
    raw = message(payload, pki, 8, payload_signer=expired.signer(), envelope_signer=None)
    pipeline = secured(cpa_spec(pki, partner=expired))
    assert not pipeline.security.require_signed_ebxml
    with capture_logs() as logs:
        result, replies = handle(pipeline, raw, "expired-unsigned")
    (warning,) = [entry for entry in logs if entry["event"] == "reply_not_encrypted"]
    assert "utløpt" in warning["reason"]
    assert result.outcome is Outcome.REJECTED, result.detail
    assert [r.kind for r in replies] == ["acknowledgment", "apprec"]
    # The partner's only encryption certificate has expired too: nothing can be encrypted to
    # it, so the S02 AppRec (no personal data in it) goes signed but unencrypted.
    apprec = open_reply(replies[1].body, pki.gateway.certificate, at=NOW)
    assert apprec.content_types == ("application/xml",)
    assert apprec.status == "2"
    assert apprec.error_codes == ("S02",)
    assert bill_count(store) == 0


def test_an_expired_signing_certificate_beside_a_valid_encryption_one_is_s02_encrypted(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    expired = expired_partner(pki)
    _, _, payload = claim(26)
    raw = message(payload, pki, 26, payload_signer=expired.signer(), envelope_signer=None)
    spec = cpa_spec(pki, partner=expired, partner_encryption=pki.partner)
    result, replies = handle(secured(spec), raw, "expired-signing-only")
    assert rejected_apprec(result, replies, pki).error_codes == ("S02",)
    assert bill_count(store) == 0


def settings(
    *,
    require_signed_msghead: bool = True,
    require_signed_ebxml: bool = False,
    encrypt_replies: bool = True,
) -> SecurityConfig:
    """The embedded default security settings, with the given changes."""
    return SecurityConfig(
        decryption=(),
        require_signed_msghead=require_signed_msghead,
        require_signed_ebxml=require_signed_ebxml,
        encrypt_replies=encrypt_replies,
        certificate_warn_days=30,
    )


def test_an_unsigned_envelope_is_a_security_failure_where_signatures_are_required(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(29)
    raw = message(payload, pki, 29, envelope_signer=None)
    pipeline = secured(security=settings(require_signed_ebxml=True))
    code, _, _ = only_message_error(*handle(pipeline, raw, "unsigned-envelope"), pki)
    assert code == "SecurityFailure"
    assert bill_count(store) == 0


def test_settings_may_take_an_unsigned_msghead_and_answer_unencrypted(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, krav, payload = claim(30)
    raw = message(payload, pki, 30, payload_signer=None)
    pipeline = secured(security=settings(require_signed_msghead=False, encrypt_replies=False))
    result, replies = handle(pipeline, raw, "lenient")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    apprec = open_reply(replies[-1].body, pki.gateway.certificate, at=NOW)
    assert apprec.content_types == ("application/xml",)
    assert apprec.status == "1"
    assert bill_count(store) == len(krav.regninger)


# --- (6), (7), (8) encryption ----------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: blob[: len(blob) // 2], id="truncated"),
        pytest.param(lambda blob: b"0\x82\x01\x00" + b"\x00" * 40, id="not-cms"),
        pytest.param(lambda blob: b"dette er ikke CMS", id="not-der"),
    ],
)
def test_a_corrupt_cms_blob_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store, damage: Callable[[bytes], bytes]
) -> None:
    _, _, payload = claim(9)
    raw = message(payload, pki, 9, envelope_signer=None)
    (part,) = mime.unwrap(raw).attachments
    result, replies = handle(secured(), replace_part(raw, damage(part.body)), "corrupt")
    code, _, _ = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert bill_count(store) == 0


def test_a_payload_changed_under_a_signed_envelope_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(10)
    raw = message(payload, pki, 10)
    (part,) = mime.unwrap(raw).attachments
    damaged = part.body[:-1] + bytes([part.body[-1] ^ 1])
    result, replies = handle(secured(), replace_part(raw, damaged), "changed-part")
    code, _, description = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert "endret" in description
    assert bill_count(store) == 0


def test_a_claim_encrypted_to_our_previous_certificate_is_accepted_during_rollover(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, krav, payload = claim(11)
    raw = message(payload, pki, 11, encrypt_to=pki.gateway_previous.certificate)
    both = [pki.gateway.decryption_key(), pki.gateway_previous.decryption_key()]
    result, replies = handle(secured(keys=both), raw, "rollover")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert opened(replies[-1], pki).status == "1"
    assert bill_count(store) == len(krav.regninger)


def test_without_the_previous_key_the_same_claim_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(12)
    raw = message(payload, pki, 12, encrypt_to=pki.gateway_previous.certificate)
    result, replies = handle(secured(), raw, "rolled-over")
    code, _, _ = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert bill_count(store) == 0


def test_a_claim_encrypted_to_an_unknown_certificate_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(13)
    raw = message(payload, pki, 13, encrypt_to=pki.partner.certificate)
    both = [pki.gateway.decryption_key(), pki.gateway_previous.decryption_key()]
    result, replies = handle(secured(keys=both), raw, "unknown-cert")
    code, _, description = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert "ikke kryptert til" in description
    assert bill_count(store) == 0


def test_a_plain_payload_where_the_cpa_requires_encryption_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(14)
    raw = message(payload, pki, 14, encrypt_to=None)
    result, replies = handle(secured(), raw, "plain")
    code, location, _ = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert location == "//eb:Manifest/eb:Reference/@xlink:href"
    assert bill_count(store) == 0


def test_a_plain_payload_is_fine_where_the_cpa_does_not_encrypt(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, krav, payload = claim(15)
    raw = message(payload, pki, 15, encrypt_to=None)
    result, replies = handle(secured(cpa_spec(pki, encrypted=False)), raw, "plain-ok")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    apprec = opened(replies[-1], pki)
    assert apprec.content_types == ("application/xml",)  # the CPA does not encrypt replies either
    assert apprec.status == "1"
    assert bill_count(store) == len(krav.regninger)


def test_the_same_signed_claim_in_a_new_message_is_answered_from_the_store(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    pipeline = secured()
    _, krav, payload = claim(27)
    _, first = handle(pipeline, message(payload, pki, 27), "first")
    result, again = handle(pipeline, message(payload, pki, 28), "again")
    assert result.outcome is Outcome.DUPLICATE, result.detail
    assert [r.kind for r in again] == ["acknowledgment", "apprec"]
    assert again[1].body == first[1].body  # the stored AppRec, byte for byte
    assert again[0].recipient == PARTNER_MAIL
    assert opened(again[0], pki).envelope.header.action == "Acknowledgment"
    assert bill_count(store) == len(krav.regninger)


# --- (9) signature wrapping ----------------------------------------------------------------------


def signed_msghead(pki: TestPki, payload: bytes) -> etree._Element:
    return pki.partner.signer().sign(etree.fromstring(payload))


def tampered(pki: TestPki, payload: bytes, evil_payload: bytes) -> bytes:
    """The signed MsgHead with one bill's number changed after signing (still a valid claim)."""
    del evil_payload
    text = etree.tostring(signed_msghead(pki, payload), xml_declaration=True, encoding="UTF-8")
    assert text.count(b"<RegningNr>") == 2
    return text.replace(b"<RegningNr>", b"<RegningNr>9", 1)


def wrapped_in_evil(pki: TestPki, payload: bytes, evil_payload: bytes) -> bytes:
    """The evil MsgHead carrying the original signed MsgHead inside, and its signature last."""
    good = signed_msghead(pki, payload)
    signature = good[len(good) - 1]
    assert signature.tag == f"{DS}Signature"
    evil = etree.fromstring(evil_payload)
    content = evil.find(f"{MH}Document/{MH}RefDoc/{MH}Content")
    assert content is not None
    content.append(good)  # the signed original hides inside, signature and all
    evil.append(etree.fromstring(etree.tostring(signature)))  # a copy, last, as expected
    return etree.tostring(evil, xml_declaration=True, encoding="UTF-8")


def nested_original(pki: TestPki, payload: bytes, evil_payload: bytes) -> bytes:
    """An unsigned evil MsgHead with the signed original nested in it."""
    evil = etree.fromstring(evil_payload)
    content = evil.find(f"{MH}Document/{MH}RefDoc/{MH}Content")
    assert content is not None
    content.append(signed_msghead(pki, payload))
    return etree.tostring(evil, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize("attack", [tampered, wrapped_in_evil, nested_original])
def test_signature_wrapping_is_s01_and_never_accepted(
    secured: PipelineFactory,
    pki: TestPki,
    store: Store,
    attack: Callable[[TestPki, bytes, bytes], bytes],
) -> None:
    _, _, payload = claim(16)
    _, _, evil_payload = claim(17)
    raw = message(attack(pki, payload, evil_payload), pki, 16, payload_signer=None)
    result, replies = handle(secured(), raw, attack.__name__)
    assert rejected_apprec(result, replies, pki).error_codes == ("S01",)
    assert bill_count(store) == 0


def test_what_is_processed_is_the_signed_msghead_without_its_signature(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    """A comment is outside C14N: the signature holds, and the stored claim is the signed one."""
    head, krav, payload = claim(18)
    text = etree.tostring(signed_msghead(pki, payload), xml_declaration=True, encoding="UTF-8")
    commented = text.replace(b"<Document>", b"<!-- lagt til underveis --><Document>", 1)
    result, _ = handle(secured(), message(commented, pki, 18, payload_signer=None), "comment")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    ((msg_id,),) = store.engine.rows("SELECT msg_id FROM messages")
    assert msg_id == head.msg_id
    assert bill_count(store) == len(krav.regninger)


def test_a_header_changed_under_the_envelope_signature_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(23)
    raw = message(payload, pki, 23)
    envelope = mime.unwrap(raw).envelope.body
    conversation = parse_envelope(envelope).header.conversation_id
    changed = envelope.replace(conversation.encode(), b"another-conversation")
    result, replies = handle(secured(), replace_body(raw, envelope, changed), "changed-header")
    code, _, _ = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert bill_count(store) == 0


def test_a_part_added_outside_the_envelope_signature_is_a_security_failure(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(24)
    _, _, evil_payload = claim(25)
    package = mime.unwrap(message(payload, pki, 24))
    (part,) = package.attachments
    assert part.content_id is not None
    raw = mime.build(
        package.envelope.body,
        [
            mime.OutgoingPart(part.content_id, ENCRYPTED_CONTENT_TYPE, part.body),
            mime.OutgoingPart("extra@evil.test", "text/xml", evil_payload),
        ],
        mail_from=ROUTE.mail_from,
        mail_to=ROUTE.mail_to,
        subject="ebXML BehandlerKrav/OppgjorsMelding",
        message_id="<added-part@evil.test>",
        date=NOW,
    )
    result, replies = handle(secured(), raw, "added-part")
    code, _, description = only_message_error(result, replies, pki)
    assert code == "SecurityFailure"
    assert "extra@evil.test" in description
    assert bill_count(store) == 0


# --- (10) the partner's Acknowledgment of our AppRec ---------------------------------------------


def test_the_partners_acknowledgment_settles_our_apprec(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    pipeline = secured()
    _, _, payload = claim(19)
    _, (_, apprec_mail) = handle(pipeline, message(payload, pki, 19), "to-ack")
    assert apprec_mail.ebxml_message_id is not None
    row = store.outbox.reply(apprec_mail.id)
    assert row is not None and row.ack_state == "awaiting"

    ours = opened(apprec_mail, pki).envelope.header
    assert ours.message_id == apprec_mail.ebxml_message_id
    envelope = build_acknowledgment(
        ours, message_id="ack-of-apprec@speare.test", timestamp=NOW + timedelta(minutes=1)
    )
    signed = serialize(sign_ebxml_envelope(envelope, pki.partner.signer(), {}))
    raw = mime.build(
        signed,
        [],
        mail_from=PARTNER_MAIL,
        mail_to=IDENTITY.mail_address,
        subject="ebXML Acknowledgment",
        message_id="<ack-of-apprec@speare.test>",
        date=NOW + timedelta(minutes=1),
    )
    result, replies = handle(pipeline, raw, "ack")
    assert result.outcome is Outcome.SIGNAL, result.detail
    assert replies == []  # a signal is never answered
    row = store.outbox.reply(apprec_mail.id)
    assert row is not None
    assert row.ack_state == "acknowledged"
    assert row.ack_received_id == result.received_id
    assert bill_count(store) == 2


@pytest.mark.parametrize("forgery", ["another_key", "unsigned"])
def test_a_forged_acknowledgment_settles_nothing(
    secured: PipelineFactory, pki: TestPki, store: Store, forgery: str
) -> None:
    pipeline = secured()
    _, _, payload = claim(23)
    _, (_, apprec_mail) = handle(pipeline, message(payload, pki, 23), "forged-ack-of")
    ours = opened(apprec_mail, pki).envelope.header
    envelope = build_acknowledgment(
        ours, message_id="forged-ack@evil.test", timestamp=NOW + timedelta(minutes=1)
    )
    if forgery == "another_key":
        intruder = pki.ca.issue("Inntrenger", key_name="intruder", now=NOW)
        envelope = serialize(sign_ebxml_envelope(envelope, intruder.signer(), {}))
    raw = mime.build(
        envelope,
        [],
        mail_from="evil@evil.test",
        mail_to=IDENTITY.mail_address,
        subject="ebXML Acknowledgment",
        message_id="<forged-ack@evil.test>",
        date=NOW + timedelta(minutes=1),
    )
    security = SecurityConfig(
        decryption=(),
        require_signed_msghead=True,
        require_signed_ebxml=True,
        encrypt_replies=True,
        certificate_warn_days=30,
    )
    pipeline.security = security
    result, replies = handle(pipeline, raw, f"forged-{forgery}")
    assert result.outcome is Outcome.SIGNAL
    assert replies == []
    row = store.outbox.reply(apprec_mail.id)
    assert row is not None and row.ack_state == "awaiting"  # still waiting: resends go on


def test_a_msghead_sent_in_another_organisations_name_is_inconsistent(
    secured: PipelineFactory, pki: TestPki, store: Store
) -> None:
    pipeline = secured()
    head, krav = make_claim(
        rng=random.Random(29),
        practitioner="lege",
        bills=1,
        sender=dataclasses.replace(
            default_sender(),
            idents=tuple(
                dataclasses.replace(i, id="9999999") if i.type == "HER" else i
                for i in default_sender().idents
            ),
        ),
        receiver=default_receiver(),
        start=datetime(2026, 10, 5, 8, 30),
    )
    result, replies = handle(
        pipeline, message(msghead_with_bkm(head, krav), pki, 29), "other-sender"
    )
    code, location, description = only_message_error(result, replies, pki)
    assert code == "Inconsistent"
    assert location == "/MsgHead/MsgInfo/Sender/Organisation/Ident"
    assert "9999999" in description
    assert bill_count(store) == 0


# --- (11) no partners: as before ------------------------------------------------------------------


def test_without_partners_a_plain_claim_is_handled_as_before(
    make_pipeline: PipelineFactory, pki: TestPki, credentials: tuple[Path, Path], store: Store
) -> None:
    pipeline = make_pipeline()
    assert pipeline.partners is None
    _, krav, payload = claim(20)
    raw = ebxml_message(payload, rng=random.Random(20))
    result, replies = handle(pipeline, raw, "no-partners")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert [r.kind for r in replies] == ["acknowledgment", "apprec"]
    assert all(r.recipient == ROUTE.mail_from for r in replies)  # the mail's From, as before
    (part,) = mime.unwrap(replies[1].body).attachments
    assert part.content_type == "application/xml"
    opened = open_reply(replies[1].body, load_certificate_file(credentials[1]))
    assert opened.apprec is not None and opened.msghead is None  # bare, as the network has it
    assert opened.apprec.find("ar:Status", AR).get("V") == "1"  # type: ignore[union-attr]
    assert bill_count(store) == len(krav.regninger)


def test_without_partners_an_encrypted_claim_is_not_supported(
    make_pipeline: PipelineFactory, pki: TestPki, store: Store
) -> None:
    _, _, payload = claim(21)
    result, replies = handle(make_pipeline(), message(payload, pki, 21), "no-keys")
    assert result.outcome is Outcome.EBXML_ERROR
    (error,) = parse_envelope(mime.unwrap(replies[0].body).envelope.body).error_list
    assert error.code == "NotSupported"
    assert bill_count(store) == 0


def test_without_partners_signatures_are_not_checked(
    make_pipeline: PipelineFactory, pki: TestPki, store: Store
) -> None:
    """No CPA, no certificate to check against: a signed MsgHead is taken as it is."""
    _, krav, payload = claim(22)
    stranger = pki.ca.issue("Hvem som helst", key_name="stranger", now=NOW)
    raw = message(
        payload, pki, 22, payload_signer=stranger.signer(), envelope_signer=None, encrypt_to=None
    )
    result, _ = handle(make_pipeline(), raw, "no-check")
    assert result.outcome is Outcome.ACCEPTED, result.detail
    assert bill_count(store) == len(krav.regninger)
