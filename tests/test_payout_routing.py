"""Payout decisions go out only with a Service/Action the receiver's CPA lists (issue 11).

With partners configured: a receiver whose CPA lists ``BehandlerKrav/Utbetalingsvedtak`` gets the
decision, signed, encrypted as the CPA's package says, at the CPA's address; one whose CPA lacks
it, or that has no CPA, gets no mail: the decision is held with the reason (``payout show``,
``gateway health``), and goes out once the CPA allows it. Nothing is lost: every decision is
stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.ebxml import mime
from gateway.ebxml.envelope import parse_envelope
from gateway.partners.registry import PartnerRegistry
from gateway.payout import cli as payout_cli
from gateway.payout import sending
from gateway.payout.sending import PayoutDeps
from gateway.pipeline import Pipeline
from gateway.security import cms
from gateway.security.signatures import verify_ebxml_envelope
from gateway.security.xmldsig import verify
from gateway.service import health
from gateway.service.health import Status
from gateway.store import Database, Store
from gateway.testing.cpa import DEFAULT_PARTNER, DEFAULT_US, CpaSpec, write_cpa
from tests.conftest import FIXED_NOW
from tests.support.pki import Credentials, TestPki
from tests.test_payout_sending import fill, make_deps, payout_replies, record

FJORD, BYEN, RHF = "8100001", "8100002", "8200001"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.create(now=FIXED_NOW)


_RECEIVERS: dict[str, Credentials] = {}


def receiver(pki: TestPki, her: str) -> Credentials:
    """The receiver's certificate, the same one each time it is asked for."""
    if her not in _RECEIVERS:
        _RECEIVERS[her] = pki.ca.issue(
            f"Mottaker {her}", key_name=f"payee-{her}", her_id=her, now=FIXED_NOW
        )
    return _RECEIVERS[her]


def cpa(pki: TestPki, her: str, *, we_send: tuple[str, ...], encrypted: bool = True) -> CpaSpec:
    theirs = receiver(pki, her)
    return CpaSpec(
        cpa_id=f"payout:{her}",
        us=dataclasses.replace(
            DEFAULT_US,
            signing_certificate=pki.gateway.certificate,
            encryption_certificate=pki.gateway.certificate,
        ),
        partner=dataclasses.replace(
            DEFAULT_PARTNER,
            her_id=her,
            mail_address=f"oppgjor@{her}.test",
            signing_certificate=theirs.certificate,
            encryption_certificate=theirs.certificate,
        ),
        we_send=we_send,
        encrypted=encrypted,
    )


def registry_of(directory: Path, *specs: CpaSpec) -> PartnerRegistry:
    directory.mkdir(exist_ok=True)
    for old in directory.glob("*.xml"):
        old.unlink()
    for spec in specs:
        write_cpa(directory, spec)
    return PartnerRegistry.load(directory)


def partners_deps(tmp_path: Path, pki: TestPki, registry: list[PartnerRegistry]) -> PayoutDeps:
    """Deps whose partner registry is whatever ``registry[0]`` holds at the time (a reload)."""
    return make_deps(
        tmp_path, pki.gateway.signer(), now=lambda: FIXED_NOW, partners=lambda: registry[0]
    )


def database_of(store: Store) -> Database:
    assert store.database is not None
    return store.database


def held(store: Store) -> dict[str, str]:
    return {h.receiver_her: h.reason for h in sending.held_decisions(store.engine)}


def test_only_a_receiver_whose_cpa_lists_the_action_gets_the_decision(
    make_pipeline: Callable[..., Pipeline], store: Store, pki: TestPki, tmp_path: Path
) -> None:
    fill(make_pipeline)
    directory = tmp_path / "partners"
    registry = [
        registry_of(
            directory,
            cpa(pki, FJORD, we_send=("Svarmelding", "Utbetalingsvedtak")),
            cpa(pki, BYEN, we_send=("Svarmelding",)),  # no decisions in this CPA
        )
    ]
    deps = partners_deps(tmp_path, pki, registry)
    outcome = sending.process_run(store.engine, record(store, deps).run_id, deps)
    assert {d.receiver_her for d in outcome.decisions} == {FJORD, BYEN, RHF}  # all stored

    (queued,) = payout_replies(store.engine)
    filename, _, _, _, recipient, _, body = queued
    assert filename == f"payout-2026-11-23-{FJORD}.eml" and recipient == f"oppgjor@{FJORD}.test"
    package = mime.unwrap(bytes(body))
    (part,) = package.attachments
    assert part.content_type == "application/pkcs7-mime"  # as the CPA's package says
    assert part.content_id is not None
    verify_ebxml_envelope(
        package.envelope.body, {part.content_id: part.body}, pki.gateway.certificate, FIXED_NOW
    )
    header = parse_envelope(package.envelope.body).header
    assert (header.cpa_id, header.service, header.action) == (
        f"payout:{FJORD}",
        "BehandlerKrav",
        "Utbetalingsvedtak",
    )
    decision = cms.decrypt(part.body, [receiver(pki, FJORD).decryption_key()])
    verify(decision, pki.gateway.cert_pem, at=FIXED_NOW)
    (stored,) = [d for d in outcome.decisions if d.receiver_her == FJORD]
    assert decision == stored.body

    reasons = held(store)
    assert set(reasons) == {BYEN, RHF}
    assert "lists no BehandlerKrav/Utbetalingsvedtak" in reasons[BYEN]
    assert "no CPA" in reasons[RHF]


def test_held_decisions_are_shown_and_go_out_once_the_cpa_allows_them(
    make_pipeline: Callable[..., Pipeline],
    store: Store,
    pki: TestPki,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill(make_pipeline)
    directory = tmp_path / "partners"
    registry = [registry_of(directory, cpa(pki, BYEN, we_send=("Svarmelding",)))]
    deps = partners_deps(tmp_path, pki, registry)
    run = record(store, deps).run_id
    sending.process_run(store.engine, run, deps)
    assert payout_replies(store.engine) == []
    assert set(held(store)) == {FJORD, BYEN, RHF}

    check = asyncio.run(health.check_payout_held(database_of(store)))
    assert check.status is Status.WARN and "3 held" in check.detail and BYEN in check.detail
    assert payout_cli._show(store.engine, run) == 0
    shown = capsys.readouterr().out
    assert shown.count("HELD, not sent:") == 3

    # The CPA is renewed with the action (a SIGHUP reload): the held decision goes out.
    registry[0] = registry_of(
        directory, cpa(pki, BYEN, we_send=("Svarmelding", "Utbetalingsvedtak"), encrypted=False)
    )
    assert sending.release_held(store.engine, deps) == 1
    (queued,) = payout_replies(store.engine)
    assert queued[0] == f"payout-2026-11-23-{BYEN}.eml"
    assert set(held(store)) == {FJORD, RHF}
    assert sending.release_held(store.engine, deps) == 0  # nothing new: queued once


def test_without_partners_decisions_go_as_before(
    make_pipeline: Callable[..., Pipeline], store: Store, pki: TestPki, tmp_path: Path
) -> None:
    fill(make_pipeline)
    deps = make_deps(tmp_path, pki.gateway.signer())
    sending.process_run(store.engine, record(store, deps).run_id, deps)
    assert len(payout_replies(store.engine)) == 3
    assert held(store) == {}
    assert store.engine.rows("SELECT COUNT(*) FROM payout_held") == [(0,)]
    check = asyncio.run(health.check_payout_held(database_of(store)))
    assert check.status is Status.OK
