"""Revocation wired into ``gateway run`` (issue 12): ``[revocation]`` read with the config, the
checker in the pipeline, the CRL refresher among the daemon's services, and a revoked partner
certificate answered with S03, against a CRL distribution point on localhost."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.adapters import load_config
from gateway.ebxml import mime
from gateway.errors import ConfigurationError
from gateway.receipts.apprec import APPREC_NS, read_apprec
from gateway.records import Outcome
from gateway.security.revocation import CrlRefresher
from gateway.security.revocation.configured import revocation_config
from gateway.service import health
from gateway.service.health import Status
from gateway.testing.claims import default_receiver, default_sender, make_claim, msghead_with_bkm
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, write_cpa
from gateway.testing.messages import Route, ebxml_message
from gateway.wiring import Parts, build
from tests.revocation_pki import Issued, RevocationPki, RevocationServer
from tests.support.pki import TestPki

ROUTE = Route()
NOW = datetime.now(UTC)


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with RevocationServer() as running:
        yield running


@pytest.fixture
def revocation_pki(server: RevocationServer) -> RevocationPki:
    return RevocationPki.create(server.base_url, now=NOW)


@pytest.fixture
def partner(revocation_pki: RevocationPki) -> Issued:
    return revocation_pki.issue("Testlegen", key_name="wired-partner", ocsp_url=None)


def write_site(
    root: Path, pki: TestPki, revocation_pki: RevocationPki, partner: Issued, *, revocation: bool
) -> Path:
    pki.gateway.write(root / "keys", "gateway")
    partners = root / "partners"
    partners.mkdir()
    spec = CpaSpec(
        cpa_id=ROUTE.cpa_id,
        us=dataclasses.replace(
            DEFAULT_US,
            signing_certificate=pki.gateway.certificate,
            encryption_certificate=pki.gateway.certificate,
        ),
        partner=dataclasses.replace(
            DEFAULT_PARTNER,
            signing_certificate=partner.certificate,
            encryption_certificate=partner.certificate,
        ),
        compressed=False,
        encrypted=False,
    )
    write_cpa(partners, spec)
    lines = [
        "[identity]",
        'name = "HELFO test"',
        'her_id = "79768"',
        "[database]",
        'path = "var/gateway.sqlite3"',
        "[spool]",
        'directory = "var/spool"',
        "[outbox]",
        'directory = "var/outbox"',
        "[signing]",
        'key_file = "keys/gateway.key.pem"',
        'cert_file = "keys/gateway.cert.pem"',
        "[partners]",
        'directory = "partners"',
        "[logging]",
        'level = "warning"',
    ]
    if revocation:
        revocation_pki.write_issuers(root / "issuers")
        lines += ["[revocation]", 'cache_dir = "var/crl"', 'issuers_dir = "issuers"']
    config = root / "gateway.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def signed_claim(partner: Issued, seed: int) -> bytes:
    head, krav = make_claim(
        rng=random.Random(seed),
        practitioner="lege",
        bills=1,
        sender=default_sender(),
        receiver=default_receiver(),
        start=datetime.now().replace(microsecond=0) - timedelta(days=10),
    )
    return ebxml_message(
        msghead_with_bkm(head, krav),
        rng=random.Random(seed),
        payload_signer=partner.signer(),  # the MsgHead signed; the envelope left unsigned
    )


def refresher(parts: Parts) -> CrlRefresher:
    (found,) = [s for s in parts.services if isinstance(s, CrlRefresher)]
    return found


def error_codes(parts: Parts, received_id: int) -> list[str | None]:
    (apprec,) = [r for r in parts.store.intake.replies_for(received_id) if r.kind == "apprec"]
    (part,) = mime.unwrap(apprec.body).attachments
    return [e.get("V") for e in read_apprec(part.body).findall(f"{{{APPREC_NS}}}Error")]


def test_a_revoked_partner_certificate_is_answered_with_s03(
    server: RevocationServer,
    revocation_pki: RevocationPki,
    partner: Issued,
    tmp_path: Path,
) -> None:
    config = load_config(
        write_site(tmp_path, TestPki.create(), revocation_pki, partner, revocation=True)
    )
    parts = build(config)
    try:
        assert parts.pipeline.revocation is not None
        # Not revoked yet: the claim is taken.
        server.serve_crl(revocation_pki.crl())
        asyncio.run(refresher(parts).refresh())
        fine = parts.pipeline.handle(
            signed_claim(partner, 1), source="spool", source_ref="a", source_name="a.msg"
        )
        assert fine.outcome is Outcome.ACCEPTED, fine.detail
        # Revoked, the next round of the refresher fetches the CRL that says so.
        server.serve_crl(revocation_pki.crl(revoked=[partner], this_update=NOW))
        asyncio.run(refresher(parts).refresh())
        revoked = parts.pipeline.handle(
            signed_claim(partner, 2), source="spool", source_ref="b", source_name="b.msg"
        )
        assert revoked.outcome is Outcome.REJECTED
        assert error_codes(parts, revoked.received_id) == ["S03"]
        bills = parts.store.engine.rows(
            "SELECT COUNT(*) FROM bills b JOIN messages m ON m.id = b.message_id "
            "WHERE m.received_id = ?",
            (revoked.received_id,),
        )
        assert bills == [(0,)]
        # gateway health reads the same cache.
        check = asyncio.run(
            health.check_revocation(revocation_config(config), [partner.certificate])
        )
        assert check.status is Status.OK, check.detail
    finally:
        parts.close()


def test_without_revocation_nothing_is_checked_and_health_says_so(
    revocation_pki: RevocationPki, partner: Issued, tmp_path: Path
) -> None:
    config = load_config(
        write_site(tmp_path, TestPki.create(), revocation_pki, partner, revocation=False)
    )
    parts = build(config)
    try:
        assert parts.pipeline.revocation is None
        assert not [s for s in parts.services if isinstance(s, CrlRefresher)]
    finally:
        parts.close()
    check = asyncio.run(health.check_revocation(None))
    assert check.status is Status.OK and "not checked" in check.detail


def test_revocation_without_partners_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        "\n".join(
            [
                "[identity]",
                'name = "x"',
                'her_id = "79768"',
                "[database]",
                'path = "db.sqlite3"',
                "[spool]",
                'directory = "spool"',
                "[outbox]",
                'directory = "outbox"',
                "[signing]",
                'key_file = "k.pem"',
                'cert_file = "c.pem"',
                "[revocation]",
                'cache_dir = "crl"',
                'issuers_dir = "issuers"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigurationError, match=r"needs partners\.directory"):
        load_config(config)
