"""Revocation checks against a CA, a CRL and an OCSP responder of our own, served on localhost.

The CRL reaches the cache the way it does in production: the refresh service fetches it from
the distribution point named in the partner's certificate. OCSP is asked live, when configured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway.ebxml.compose import serialize
from gateway.errors import (
    CertificateInvalid,
    CertificateRevoked,
    RevocationUnknown,
    SignatureInvalid,
    receipt_for,
)
from gateway.security.certificates import Purpose, check_certificate
from gateway.security.revocation import Revocation, RevocationChecker, RevocationConfig
from gateway.security.revocation.config import OcspResponder as OcspConfig
from gateway.security.revocation.crl import CrlCache, accept_crl
from gateway.security.revocation.fetch import RevocationSourceError
from gateway.security.revocation.issuers import Issuers
from gateway.security.revocation.ocsp import build_request, read_response
from gateway.security.signatures import verify_msghead
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.validation.safe_xml import parse_xml
from tests.revocation_pki import (
    CRL_PATH,
    OCSP_PATH,
    Issued,
    OcspResponder,
    RevocationPki,
    RevocationServer,
)

NOW = datetime.now(UTC)


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with RevocationServer() as running:
        yield running


@pytest.fixture
def pki(server: RevocationServer) -> RevocationPki:
    return RevocationPki.create(server.base_url, now=NOW)


@pytest.fixture
def partner(pki: RevocationPki) -> Issued:
    return pki.issue("Testlegen", key_name="revocation-partner")


@pytest.fixture
def revoked(pki: RevocationPki) -> Issued:
    return pki.issue("Tidligere lege", key_name="revocation-revoked")


def config_for(
    pki: RevocationPki, tmp_path: Path, *, ocsp: bool = False, **changes: object
) -> RevocationConfig:
    issuers = pki.write_issuers(tmp_path / "issuers")
    config = RevocationConfig(
        cache_dir=tmp_path / "crl",
        issuers_dir=issuers,
        timeout=5.0,
        ocsp=(OcspConfig("intermediate.pem"),) if ocsp else (),
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def started(config: RevocationConfig, *certs: Issued) -> Revocation:
    """Checker and refresher on one cache, after one refresh round."""
    revocation = Revocation.start(config, lambda: [c.certificate for c in certs])
    report = asyncio.run(revocation.refresher.refresh())
    assert not report.failed, report.failed
    return revocation


@pytest.fixture
def msghead() -> bytes:
    head, krav = make_claim(
        rng=random.Random(3),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime(2026, 10, 1, 9, 0),
    )
    return msghead_with_bkm(head, krav)


# --- the answer codes ----------------------------------------------------------------------------


def test_a_revoked_certificate_has_its_own_apprec_code_and_unknown_status_another() -> None:
    revoked_code = receipt_for(CertificateRevoked("x"))
    unknown_code = receipt_for(RevocationUnknown("x"))
    assert (revoked_code.code, revoked_code.text) == ("S03", "Tilbaketrukket sertifikat")
    assert (unknown_code.code, unknown_code.text) == (
        "S99",
        "Annen feil på signatur eller sertifikat",
    )
    assert receipt_for(CertificateInvalid("x")).code == "S02"  # unchanged
    assert isinstance(CertificateRevoked("x"), CertificateInvalid)


# --- CRL -----------------------------------------------------------------------------------------


def test_a_good_certificate_passes_and_one_on_the_crl_is_revoked(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    server.serve_crl(pki.crl(revoked=[revoked]))
    checker = started(config_for(pki, tmp_path), partner, revoked).checker
    assert server.hits[CRL_PATH] == 1

    checker.check(partner.certificate, NOW)
    with pytest.raises(CertificateRevoked, match="tilbaketrukket av utstederen fra") as caught:
        checker.check(revoked.certificate, NOW)
    assert "ifølge CRL" in caught.value.detail
    # Revoked after the moment asked about: valid then.
    checker.check(revoked.certificate, NOW - timedelta(hours=3))


def test_signature_verification_refuses_a_revoked_signer_with_s03(
    server: RevocationServer,
    pki: RevocationPki,
    partner: Issued,
    revoked: Issued,
    msghead: bytes,
    tmp_path: Path,
) -> None:
    server.serve_crl(pki.crl(revoked=[revoked]))
    checker = started(config_for(pki, tmp_path), partner, revoked).checker
    good = serialize(partner.signer().sign(parse_xml(msghead)))
    bad = serialize(revoked.signer().sign(parse_xml(msghead)))

    verify_msghead(good, partner.certificate, NOW, revocation=checker)
    verify_msghead(bad, revoked.certificate, NOW)  # without a checker: today's behaviour
    with pytest.raises(CertificateRevoked) as caught:
        verify_msghead(bad, revoked.certificate, NOW, revocation=checker)
    assert receipt_for(caught.value).code == "S03"
    # A signature by another key is still S01, before any revocation question.
    with pytest.raises(SignatureInvalid):
        verify_msghead(bad, partner.certificate, NOW, revocation=checker)
    # The encryption side: check_certificate takes the same checker.
    check_certificate(partner.certificate, NOW, Purpose.ENCRYPTION, revocation=checker)
    with pytest.raises(CertificateRevoked):
        check_certificate(revoked.certificate, NOW, Purpose.ENCRYPTION, revocation=checker)


def test_a_crl_with_a_bad_signature_is_rejected_and_the_cache_kept(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    server.serve_crl(pki.crl())
    revocation = started(config, partner, revoked)
    before = sorted(p.read_bytes() for p in config.cache_dir.iterdir())

    stranger = RevocationPki.create(server.base_url, now=NOW, label="-stranger")
    forged = pki.crl(revoked=[revoked], signed_by=stranger.intermediate.key)
    with pytest.raises(RevocationSourceError, match="not signed by a trusted issuer"):
        accept_crl(forged, revocation.checker.issuers, url="x", now=NOW)
    server.serve_crl(forged)
    with capture_logs() as logs:
        report = asyncio.run(revocation.refresher.refresh())
    assert list(report.failed) == [pki.crl_url]
    assert any(e["event"] == "crl_fetch_failed" for e in logs)
    assert sorted(p.read_bytes() for p in config.cache_dir.iterdir()) == before
    revocation.checker.check(revoked.certificate, NOW)  # the forged revocation is not believed


def test_crls_that_do_not_fit_are_rejected(
    pki: RevocationPki, revoked: Issued, tmp_path: Path
) -> None:
    issuers = Issuers.load(pki.write_issuers(tmp_path / "issuers"))
    with pytest.raises(RevocationSourceError, match="not a CRL"):
        accept_crl(b"\x30\x03\x02\x01\x01", issuers, url="u", now=NOW)
    future = pki.crl(this_update=NOW + timedelta(hours=1))
    with pytest.raises(RevocationSourceError, match="ahead"):
        accept_crl(future, issuers, url="u", now=NOW)
    cache = CrlCache(tmp_path / "crl", issuers)
    cache.store("u", pki.crl(revoked=[revoked]), now=NOW)
    older = pki.crl(this_update=NOW - timedelta(days=2))
    with pytest.raises(RevocationSourceError, match="older than the cached"):
        cache.store("u", older, now=NOW)
    cached = cache.get("u")
    assert cached is not None and cached.revocation(revoked.certificate) is not None


def test_a_cache_file_changed_on_disk_is_not_believed(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    server.serve_crl(pki.crl(revoked=[revoked]))
    checker = started(config, partner).checker
    (crl_file,) = config.cache_dir.glob("*.crl")
    crl_file.write_bytes(crl_file.read_bytes()[:-5] + b"\x00" * 5)
    with pytest.raises(RevocationUnknown, match="ikke hentet"):
        checker.check(revoked.certificate, NOW)


# --- status unknown: fail closed or open --------------------------------------------------------


def test_a_stale_crl_fails_closed_by_default_and_open_when_configured(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    server.serve_crl(pki.crl(revoked=[revoked]))
    config = config_for(pki, tmp_path)
    cache = started(config, partner).checker.cache
    later = NOW + timedelta(days=2)  # past nextUpdate, and longer than max_age

    closed = RevocationChecker(config, cache.issuers, cache, clock=lambda: later)
    with pytest.raises(RevocationUnknown, match="utdatert") as caught:
        closed.check(partner.certificate, later)
    assert receipt_for(caught.value).code == "S99"
    # A revocation in a stale CRL still stands.
    with pytest.raises(CertificateRevoked):
        closed.check(revoked.certificate, later)

    open_config = config_for(pki, tmp_path, stale="fail-open")
    opened = RevocationChecker(open_config, cache.issuers, cache, clock=lambda: later)
    with capture_logs() as logs:
        opened.check(partner.certificate, later)
    assert [e["event"] for e in logs] == ["revocation_unknown_accepted"]
    with pytest.raises(CertificateRevoked):
        opened.check(revoked.certificate, later)


def test_max_age_makes_a_crl_stale_before_its_next_update(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    server.serve_crl(pki.crl(next_update=NOW + timedelta(days=30)))
    config = config_for(pki, tmp_path, max_age=timedelta(hours=6))
    cache = started(config, partner).checker.cache
    cached = cache.get(pki.crl_url)
    assert cached is not None
    fetched = cached.fetched_at  # the age counts from the last successful fetch
    five = RevocationChecker(
        config, cache.issuers, cache, clock=lambda: fetched + timedelta(hours=5)
    )
    five.check(partner.certificate, NOW)
    seven = RevocationChecker(
        config, cache.issuers, cache, clock=lambda: fetched + timedelta(hours=7)
    )
    with pytest.raises(RevocationUnknown, match="utdatert"):
        seven.check(partner.certificate, NOW)


def test_what_cannot_be_checked_is_refused_when_failing_closed(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = config_for(pki, tmp_path)
    checker = RevocationChecker.from_config(config)
    # Never fetched.
    with pytest.raises(RevocationUnknown, match="ikke hentet"):
        checker.check(partner.certificate, NOW)
    # No CRL distribution point in the certificate.
    bare = pki.issue("Uten CRL", key_name="revocation-bare", crl_urls=[])
    with pytest.raises(RevocationUnknown, match="oppgir ingen sperreliste"):
        checker.check(bare.certificate, NOW)
    # An issuer that is not trusted.
    stranger = RevocationPki.create(server.base_url, now=NOW, label="-stranger")
    foreign = stranger.issue("Fremmed", key_name="revocation-foreign")
    with pytest.raises(RevocationUnknown, match="ikke blant mottakerens godkjente utstedere"):
        checker.check(foreign.certificate, NOW)


# --- OCSP ----------------------------------------------------------------------------------------


def test_ocsp_is_asked_first_and_a_revoked_answer_refuses(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    # The CRL knows nothing; OCSP does.
    server.serve_crl(pki.crl())
    responder = OcspResponder(pki, {revoked.certificate.serial_number: "revoked"})
    server.serve_ocsp(responder)
    checker = started(config_for(pki, tmp_path, ocsp=True), partner, revoked).checker

    checker.check(partner.certificate, NOW)
    with pytest.raises(CertificateRevoked, match="ifølge OCSP"):
        checker.check(revoked.certificate, NOW)
    assert responder.requests == 2
    # Answers are kept until their nextUpdate: no new request.
    checker.check(partner.certificate, NOW)
    assert responder.requests == 2


def test_a_good_ocsp_answer_suffices_without_any_crl(
    server: RevocationServer, pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    server.serve_ocsp(OcspResponder(pki))
    checker = RevocationChecker.from_config(config_for(pki, tmp_path, ocsp=True))
    checker.check(partner.certificate, NOW)
    assert CRL_PATH not in server.hits


def test_ocsp_down_or_unsure_falls_back_to_the_crl(
    server: RevocationServer, pki: RevocationPki, partner: Issued, revoked: Issued, tmp_path: Path
) -> None:
    server.serve_crl(pki.crl(revoked=[revoked]))
    server.fail(OCSP_PATH)
    config = config_for(pki, tmp_path, ocsp=True)
    checker = started(config, partner, revoked).checker
    with capture_logs() as logs:
        checker.check(partner.certificate, NOW)
        with pytest.raises(CertificateRevoked, match="ifølge CRL"):
            checker.check(revoked.certificate, NOW)
    assert [e["event"] for e in logs] == ["ocsp_failed", "ocsp_failed"]
    assert "HTTP 503" in logs[0]["error"]

    # "unknown" from the responder: the CRL decides too.
    server.serve_ocsp(OcspResponder(pki, {revoked.certificate.serial_number: "unknown"}))
    unsure = RevocationChecker(config, checker.issuers, checker.cache)
    with pytest.raises(CertificateRevoked, match="ifølge CRL"):
        unsure.check(revoked.certificate, NOW)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("forged", "signature does not verify"),
        ("impostor", "signed by an unknown responder"),
        ("wrong-nonce", "nonce is not ours"),
        ("old-without-nonce", "older than"),
        ("responder-without-eku", "lacks OCSPSigning"),
    ],
)
def test_an_ocsp_answer_that_cannot_be_trusted_is_not_believed(
    pki: RevocationPki, revoked: Issued, change: str, reason: str, tmp_path: Path
) -> None:
    responder = OcspResponder(pki, {revoked.certificate.serial_number: "good"})
    if change == "forged":
        responder.corrupt = True
    elif change == "impostor":
        responder.impostor = RevocationPki.create("x", now=NOW, label="-stranger").intermediate
    elif change == "wrong-nonce":
        responder.nonce = "wrong"
    elif change == "old-without-nonce":
        responder.nonce = "none"
        responder.this_update = NOW - timedelta(hours=3)
    else:
        responder.responder = pki.delegated_responder(ocsp_signing=False)
    issuers = Issuers.load(pki.write_issuers(tmp_path / "issuers"))
    (issuer,) = (i for i in issuers if i.file_name == "intermediate.pem")
    request, nonce = build_request(revoked.certificate, issuer)
    _, body = responder(request)
    with pytest.raises(RevocationSourceError, match=reason):
        read_response(
            body, revoked.certificate, issuer, nonce=nonce, now=NOW, max_age=timedelta(hours=1)
        )


def test_a_delegated_responder_and_an_answer_without_nonce_are_accepted(
    pki: RevocationPki, revoked: Issued, tmp_path: Path
) -> None:
    issuers = Issuers.load(pki.write_issuers(tmp_path / "issuers"))
    (issuer,) = (i for i in issuers if i.file_name == "intermediate.pem")
    responder = OcspResponder(
        pki,
        {revoked.certificate.serial_number: "revoked"},
        responder=pki.delegated_responder(),
        nonce="none",
    )
    request, nonce = build_request(revoked.certificate, issuer)
    _, body = responder(request)
    answer = read_response(
        body, revoked.certificate, issuer, nonce=nonce, now=NOW, max_age=timedelta(hours=1)
    )
    assert answer.status == "revoked"
    assert answer.revoked_at is not None and answer.revoked_at < NOW
    # The answer is about this certificate only.
    other = pki.issue("Annen lege", key_name="revocation-partner")
    with pytest.raises(RevocationSourceError, match="not about this certificate"):
        read_response(
            body, other.certificate, issuer, nonce=nonce, now=NOW, max_age=timedelta(hours=1)
        )
