"""Every kind of reply the gateway sends, against the OFFICIAL schemas, each signature checked by
an independent verifier (issue 11).

Real messages from a partner with a CPA go through the pipeline: signed, gzipped, encrypted to
us, the envelope signed and asking for a signed acknowledgment. What comes back is held against
``../shared/standards`` and opened without the gateway's own verification code:

- every ebXML envelope (Acknowledgment with the claim's ``ds:Reference`` copies, MessageError,
  Pong, StatusResponse, the AppRec's and the payout decision's messages) against the official
  ebMS 2.0 and SOAP schemas, its signature verified by **signxml** alone (``cid:`` references
  over the payload parts included);
- every AppRec, status 1, 2 and 3 with per-bill errors, in 1.0 and 1.1, decrypted by **openssl**
  with the partner's key and validated against the official AppRec schema of its version;
- the bare AppRec file answering a spool MsgHead, its detached CMS signature verified by
  **openssl** (``cms -verify``, the signer pinned to our certificate);
- the payout decision: decrypted by openssl, its enveloped XML-DSig verified by signxml, valid
  against the project's schema (no official one exists).

Skips with a reason where ../shared/standards is absent (fails in CI).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.verifier import SignatureConfiguration, XMLVerifier

from gateway.claims.model import BehandlerKrav
from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.namespaces import DS_NS, EB_NS, SOAP_NS
from gateway.ebxml.signals import build_ping, build_status_request, signature_references
from gateway.payout import sending
from gateway.pipeline import Pipeline
from gateway.receipts.apprec import APPREC_V1_1_NS, AppRecVersion
from gateway.records import PendingReply
from gateway.rules.codes import DEFAULT_CODE_SYSTEM, KITH_8221
from gateway.store import Store
from gateway.testing.claims import msghead_with_bkm
from gateway.testing.messages import Route
from gateway.validation.catalog import SchemaCatalog
from tests.support.pki import Credentials, TestPki
from tests.test_apprec_conformance import apprec_schema
from tests.test_payout_routing import FJORD, cpa, partners_deps, receiver, registry_of
from tests.test_payout_sending import fill, payout_replies, record
from tests.test_pipeline_security import (
    NOW,
    PipelineFactory,
    claim,
    cpa_spec,
    handle,
    message,
    pki,
    secured,
)
from tests.test_replies import msh_message, partner_header

pytestmark = pytest.mark.conformance

__all__ = ["pki", "secured"]  # fixtures, imported to be found here

DS = f"{{{DS_NS}}}"
EB = f"{{{EB_NS}}}"
SOAP = f"{{{SOAP_NS}}}"
_PARSER = etree.XMLParser(no_network=True, resolve_entities=False)


@pytest.fixture(scope="module")
def official(standards: Path) -> SchemaCatalog:
    catalog = SchemaCatalog.default(extra_dirs=[standards])
    for namespace in (EB_NS, SOAP_NS, "http://www.kith.no/xmlstds/msghead/2006-05-24"):
        # Resolved: ../shared may be a symbolic link to the standards.
        assert standards.resolve() in catalog.source_of(namespace).resolve().parents, namespace
    return catalog


# --- independent verifiers -----------------------------------------------------------------------


def openssl(*args: str) -> bytes:
    binary = shutil.which("openssl")
    assert binary is not None, "openssl is needed for the independent CMS checks"
    done = subprocess.run([binary, *args], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def openssl_decrypt(blob: bytes, who: Credentials, work: Path) -> bytes:
    """``blob`` (CMS enveloped-data, DER) opened by openssl with ``who``'s key."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "in.der").write_bytes(blob)
    (work / "key.pem").write_bytes(who.key_pem)
    (work / "cert.pem").write_bytes(who.cert_pem)
    return openssl(
        "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(work / "in.der"),
        "-recip", str(work / "cert.pem"), "-inkey", str(work / "key.pem"),
    )  # fmt: skip


def openssl_verify_detached(data: bytes, signature: bytes, signer: Credentials, work: Path) -> None:
    """The detached CMS signature over ``data``, by exactly ``signer``'s certificate."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "data").write_bytes(data)
    (work / "sig.der").write_bytes(signature)
    (work / "signer.pem").write_bytes(signer.cert_pem)
    openssl(
        "cms", "-verify", "-binary", "-inform", "DER", "-in", str(work / "sig.der"),
        "-content", str(work / "data"), "-noverify", "-nointern",
        "-certfile", str(work / "signer.pem"), "-out", str(work / "verified"),
    )  # fmt: skip


def signxml_verify_envelope(body: bytes, signer: Credentials) -> etree._Element:
    """Our signed ebXML envelope, checked by signxml alone (it skips the ebMS XPath transform,
    a no-op on our envelopes); every ``cid:`` reference resolved to its part."""
    package = mime.unwrap(body)
    parts = {p.content_id: p.body for p in package.attachments if p.content_id}
    root = etree.fromstring(package.envelope.body, _PARSER)

    def resolve(uri: str) -> bytes | None:
        return parts.get(unquote(uri[4:])) if uri.startswith("cid:") else None

    config = SignatureConfiguration(expect_references=1 + len(parts), location=f"./{SOAP}Header/")
    XMLVerifier().verify(
        root,
        x509_cert=signer.certificate.public_bytes(Encoding.PEM).decode(),
        expect_config=config,
        uri_resolver=resolve,
    )
    return root


# --- the replies ----------------------------------------------------------------------------------


def future(krav: BehandlerKrav, day: int, *positions: int) -> BehandlerKrav:
    """``krav`` as new bills (Guids of their own, ``day`` days later, so no time of the first
    claim is met again), those at ``positions`` dated a month ahead (rule 766 refuses them)."""
    bills = [
        dataclasses.replace(
            bill, guid=f"{{day-{day}-{index}}}", dato_tid=bill.dato_tid + timedelta(days=day)
        )
        for index, bill in enumerate(krav.regninger)
    ]
    for position in positions:
        bills[position] = dataclasses.replace(
            bills[position], dato_tid=NOW.replace(tzinfo=None) + timedelta(days=30)
        )
    return dataclasses.replace(krav, regninger=tuple(bills))


def run_every_kind(
    pipeline: Pipeline, pki: TestPki
) -> tuple[dict[str, bytes], dict[str, list[PendingReply]]]:
    """Messages that get every kind of reply: (name -> what was sent, name -> its replies)."""
    head, krav, payload = claim(31, bills=3)
    accepted = message(payload, pki, 31)
    claim_id = parse_envelope(mime.unwrap(accepted).envelope.body).header.message_id
    partly = msghead_with_bkm(dataclasses.replace(head, msg_id="partly"), future(krav, 1, 1))
    rejected = msghead_with_bkm(dataclasses.replace(head, msg_id="all"), future(krav, 2, 0, 1, 2))
    invalid = msghead_with_bkm(dataclasses.replace(head, msg_id="t02"), krav).replace(
        b"<DatoTid>", b"<DatoTid>x", 1
    )
    spool = msghead_with_bkm(dataclasses.replace(head, msg_id="spool"), future(krav, 3))
    sent = {
        "accepted": accepted,
        "partly": message(partly, pki, 32),
        "rejected": message(rejected, pki, 33),
        "t02": message(invalid, pki, 34),
        "wrong-action": message(payload, pki, 35, route=Route(action="Nei")),
        "ping": msh_message(build_ping(partner_header("ping-c")), pki),
        "status": msh_message(build_status_request(partner_header("status-c"), claim_id), pki),
        "spool": etree.tostring(
            pki.partner.signer().sign(etree.fromstring(spool, _PARSER)),
            xml_declaration=True,
            encoding="UTF-8",
        ),
    }
    return sent, {name: handle(pipeline, raw, name)[1] for name, raw in sent.items()}


def test_every_kind_of_reply_is_official_and_verifies_independently(
    secured: PipelineFactory, pki: TestPki, official: SchemaCatalog, standards: Path, tmp_path: Path
) -> None:
    sent, replies = run_every_kind(secured(), pki)
    kinds: Counter[str] = Counter()
    statuses: set[str] = set()
    for name, answered in replies.items():
        for position, reply in enumerate(answered):
            kinds[reply.kind] += 1
            work = tmp_path / f"{name}-{position}"
            if reply.kind == "apprec_signature":
                continue  # checked with its file below
            if reply.kind == "apprec" and not reply.filename.endswith(".eml"):
                (signature,) = [r for r in answered if r.kind == "apprec_signature"]
                assert signature.filename == reply.filename + ".p7s"
                openssl_verify_detached(reply.body, signature.body, pki.gateway, work)
                statuses.add(check_apprec(reply.body, standards, AppRecVersion.V1_0))
                continue
            report = official.validate_bytes(mime.unwrap(reply.body).envelope.body)
            assert report.valid, f"{name} {reply.kind}: {report.summary()}"
            envelope = signxml_verify_envelope(reply.body, pki.gateway)
            if reply.kind == "acknowledgment":
                check_acknowledgment(envelope, sent[name])
            elif reply.kind == "apprec":
                (part,) = mime.unwrap(reply.body).attachments
                assert part.content_type == "application/pkcs7-mime"
                document = openssl_decrypt(part.body, pki.partner, work)
                statuses.add(check_apprec(document, standards, AppRecVersion.V1_0))
            elif reply.kind == "status_response":
                (response,) = envelope.iter(f"{EB}StatusResponse")
                assert response.get(f"{EB}messageStatus") == "Processed"
    assert set(kinds) == {
        "acknowledgment",
        "apprec",
        "apprec_signature",
        "message_error",
        "pong",
        "status_response",
    }
    assert statuses == {"1", "2", "3"}


def check_apprec(document: bytes, standards: Path, version: AppRecVersion) -> str:
    """Valid against the official schema of ``version``; every Error complete. The status."""
    apprec = etree.fromstring(document, _PARSER)
    schema = apprec_schema(standards, version)
    assert schema.validate(apprec), schema.error_log
    namespace = version.namespace
    for error in apprec.findall(f"{{{namespace}}}Error"):
        assert error.get("S") in (DEFAULT_CODE_SYSTEM, KITH_8221)
        assert error.get("V") and error.get("DN") and error.get("OT")
    status = apprec.find(f"{{{namespace}}}Status")
    assert status is not None
    return str(status.get("V"))


def check_acknowledgment(envelope: etree._Element, claim_mail: bytes) -> None:
    """A signed acknowledgment carries the claim's ds:Reference copies (ebMS 2.0 §6.3.2.5)."""
    (ack,) = envelope.iter(f"{EB}Acknowledgment")
    copies = ack.findall(f"{DS}Reference")
    expected = [
        etree.fromstring(r, _PARSER)
        for r in signature_references(mime.unwrap(claim_mail).envelope.body)
    ]
    assert [(c.get("URI"), c.findtext(f"{DS}DigestValue")) for c in copies] == [
        (e.get("URI"), e.findtext(f"{DS}DigestValue")) for e in expected
    ]


def test_an_apprec_1_1_is_official_when_the_cpa_declares_it(
    secured: PipelineFactory, pki: TestPki, standards: Path, tmp_path: Path
) -> None:
    spec = dataclasses.replace(cpa_spec(pki), apprec_namespace=APPREC_V1_1_NS)
    _, _, payload = claim(36, bills=2)
    _, (_, reply) = handle(secured(spec), message(payload, pki, 36), "v11")
    signxml_verify_envelope(reply.body, pki.gateway)
    (part,) = mime.unwrap(reply.body).attachments
    document = openssl_decrypt(part.body, pki.partner, tmp_path)
    assert check_apprec(document, standards, AppRecVersion.V1_1) == "1"


def test_a_payout_decision_is_official_and_verifies_independently(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    pki: TestPki,
    official: SchemaCatalog,
    catalog: SchemaCatalog,
    tmp_path: Path,
) -> None:
    fill(make_pipeline)
    registry = [registry_of(tmp_path / "partners", cpa(pki, FJORD, we_send=("Utbetalingsvedtak",)))]
    deps = partners_deps(tmp_path, pki, registry)
    sending.process_run(store.engine, record(store, deps).run_id, deps)
    (queued,) = payout_replies(store.engine)
    body = bytes(queued[6])
    report = official.validate_bytes(mime.unwrap(body).envelope.body)
    assert report.valid, report.summary()
    signxml_verify_envelope(body, pki.gateway)
    (part,) = mime.unwrap(body).attachments
    decision = openssl_decrypt(part.body, receiver(pki, FJORD), tmp_path)
    root = etree.fromstring(decision, _PARSER)
    XMLVerifier().verify(root, x509_cert=pki.gateway.cert_pem.decode())
    assert catalog.validate(root).valid
