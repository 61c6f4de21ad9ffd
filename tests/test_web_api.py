"""The claim status API against a real server: senders authenticate with a signed JWT (JWKS)
or mutual TLS, see only their own claims (others' are 404), and get KUHR's status model."""

from __future__ import annotations

import dataclasses
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.casework.overrides import APPROVE, override
from gateway.testing.cpa import DEFAULT_PARTNER, CpaSpec, write_cpa
from tests.support.net import localhost_certificate
from tests.support.pki import TestPki
from tests.support.web import (
    AUDIENCE,
    SENDER_A,
    SENDER_B,
    Console,
)

pytestmark = pytest.mark.integration



def as_sender(web: Console, sender: str) -> httpx.Client:
    token = web.issuer.token(sender)
    return httpx.Client(
        base_url=web.base + "/api/v1", headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def no_national_ids(web: Console, text: str) -> None:
    for pid in web.seeded.patient_ids:
        assert pid not in text


def test_credentials_are_required(web: Console) -> None:
    with httpx.Client(base_url=web.base + "/api/v1", timeout=30) as http:
        answer = http.get("/meldinger")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["feil"] == "ikke_autentisert"
        assert http.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    "change",
    ["expired", "issuer", "audience", "key", "sender", "scheme"],
)
def test_bad_tokens_are_refused(web: Console, change: str) -> None:
    issuer = web.issuer
    token = {
        "expired": lambda: issuer.token(SENDER_A, lifetime=timedelta(minutes=-5)),
        "issuer": lambda: issuer.token(SENDER_A, issuer="https://evil.test"),
        "audience": lambda: issuer.token(SENDER_A, audience="another-api"),
        "key": lambda: issuer.token(
            SENDER_A, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "sender": lambda: issuer.token("not-a-her-id"),
        "scheme": lambda: issuer.token(SENDER_A),
    }[change]()
    scheme = "Basic" if change == "scheme" else "Bearer"
    with httpx.Client(base_url=web.base + "/api/v1", timeout=30) as http:
        answer = http.get("/meldinger", headers={"authorization": f"{scheme} {token}"})
        assert answer.status_code == 401


def test_a_sender_sees_its_messages_with_kuhr_statuses(web: Console) -> None:
    seeded = web.seeded
    with as_sender(web, SENDER_A) as http:
        listing = http.get("/meldinger").json()
        assert [m["msgId"] for m in listing["meldinger"]] == list(seeded.msg_ids_a)
        assert listing["neste"] is None
        first = listing["meldinger"][0]
        assert first["meldingsstatus"] == "sendt_til_behandling"
        assert first["kontrollstatus"] == "kontrolleres_manuelt"
        assert first["antallRegninger"] == 3
        detail = http.get(f"/meldinger/{seeded.msg_ids_a[1]}").json()
        statuses = {b["status"] for b in detail["regninger"]}
        assert statuses == {"behandles", "avvist"}
        rejected = next(b for b in detail["regninger"] if b["status"] == "avvist")
        assert {"nummer": "766"}.items() <= rejected["merknader"][0].items()
        assert rejected["utbetalingsstatus"] == "ingen_utbetaling"
        assert rejected["godkjentBelop"] == 0.0
        no_national_ids(web, json.dumps(listing) + json.dumps(detail))


def test_other_senders_claims_are_404_never_403(web: Console) -> None:
    seeded = web.seeded
    with as_sender(web, SENDER_A) as http:
        for path in (
            f"/meldinger/{seeded.msg_ids_b[0]}",
            f"/regninger/{seeded.guids_b[0]}",
            "/meldinger/no-such-message",
            "/regninger/no-such-guid",
        ):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json() == {"feil": "ikke_funnet", "melding": "Fant ikke kravet."}
        assert http.get("/regninger", params={"guid": seeded.guids_b[0]}).json() == {
            "regninger": [],
            "neste": None,
        }
        own = http.get("/regninger").json()["regninger"]
        assert {b["guid"] for b in own} == set(seeded.guids_a)
    with as_sender(web, SENDER_B) as http:
        assert [m["msgId"] for m in http.get("/meldinger").json()["meldinger"]] == list(
            seeded.msg_ids_b
        )
        assert http.get(f"/regninger/{seeded.guids_b[0]}").status_code == 200


def test_paging_and_since(web: Console) -> None:
    with as_sender(web, SENDER_A) as http:
        page = http.get("/regninger", params={"limit": 2}).json()
        assert len(page["regninger"]) == 2 and page["neste"] is not None
        rest = http.get("/regninger", params={"limit": 2, "etter": page["neste"]}).json()
        assert len(rest["regninger"]) == 2 and rest["neste"] is not None
        last = http.get("/regninger", params={"limit": 2, "etter": rest["neste"]}).json()
        assert len(last["regninger"]) == 1 and last["neste"] is None
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert http.get("/meldinger", params={"since": future}).json()["meldinger"] == []
        assert http.get("/meldinger", params={"limit": 0}).status_code == 400
        assert http.get("/meldinger", params={"since": "igår"}).status_code == 400
        assert http.get("/meldinger", params={"hva": "1"}).status_code == 400


def test_an_override_shows_as_controlled_and_is_found_by_since(web: Console) -> None:
    seeded = web.seeded
    store = web.data.store
    bill = store.casework.bill(seeded.manual_bill_ids[0])
    assert bill is not None
    before = datetime.now(UTC)
    with as_sender(web, SENDER_A) as http:
        assert http.get(f"/regninger/{bill.guid}").json()["kontrollstatus"] == (
            "kontrolleres_manuelt"
        )
        override(store, bill, decision=APPROVE, reason="Kontrollert", by="sara")
        after = http.get(f"/regninger/{bill.guid}").json()
        assert after["kontrollstatus"] == "ferdig_kontrollert"
        assert after["status"] == "godkjent"
        assert after["utbetalingsstatus"] == "ikke_sendt_til_utbetaling"
        changed = http.get("/regninger", params={"since": before.isoformat()}).json()
        assert [b["guid"] for b in changed["regninger"]] == [bill.guid]
        messages = http.get("/meldinger", params={"since": before.isoformat()}).json()
        assert [m["msgId"] for m in messages["meldinger"]] == [seeded.msg_ids_a[0]]


def test_payout_shows_in_the_status(web: Console) -> None:
    with as_sender(web, SENDER_A) as http:
        bills = http.get("/regninger").json()["regninger"]
    paid = [b for b in bills if b["utbetaling"] is not None]
    assert paid, "the seeded payout run paid sender A's approved bills"
    for b in paid:
        assert b["utbetalingsstatus"] == "sendt_til_utbetaling"  # the run is not sent yet
        assert b["utbetaling"]["belop"] == b["godkjentBelop"]
        assert b["utbetaling"]["utbetalingsrunde"] == "2026-11-23T1600"


@pytest.fixture
def mtls_api(
    tmp_path: Path, start_console: Callable[..., AbstractContextManager[Console]]
) -> Iterator[tuple[Console, TestPki, Path]]:
    pki = TestPki.create()
    partners = tmp_path / "partners"
    partners.mkdir()
    partner = dataclasses.replace(
        DEFAULT_PARTNER,
        her_id=SENDER_A,
        signing_certificate=pki.partner.certificate,
        encryption_certificate=pki.partner.certificate,
    )
    write_cpa(partners, CpaSpec(partner=partner))
    server_cert, server_key = localhost_certificate(tmp_path / "tls")
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_bytes(pki.ca.certificate.public_bytes(Encoding.PEM))
    with start_console(
        web_extra=f'tls_cert_file = "{server_cert}"\ntls_key_file = "{server_key}"\n',
        api_extra=f'mtls = true\nclient_ca_file = "{ca_file}"\n',
        config_extra=f'[partners]\ndirectory = "{partners}"\n',
    ) as running:
        yield running, pki, server_cert


def tls(server_cert: Path, client: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server_cert))
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context


def test_mutual_tls_with_the_partners_certificate(
    mtls_api: tuple[Console, TestPki, Path], tmp_path: Path
) -> None:
    web, pki, server_cert = mtls_api
    key, cert = pki.partner.write(tmp_path / "client", "partner")
    with httpx.Client(
        base_url=web.base + "/api/v1", verify=tls(server_cert, (cert, key)), timeout=30
    ) as http:
        listing = http.get("/meldinger")
        assert listing.status_code == 200
        assert [m["msgId"] for m in listing.json()["meldinger"]] == list(web.seeded.msg_ids_a)
        assert http.get(f"/meldinger/{web.seeded.msg_ids_b[0]}").status_code == 404
    # A certificate from the same CA that no CPA holds is nobody.
    other_key, other_cert = pki.ca.issue("Ukjent", key_name="stranger").write(
        tmp_path / "other", "x"
    )
    stranger = (other_cert, other_key)
    with httpx.Client(
        base_url=web.base + "/api/v1", verify=tls(server_cert, stranger), timeout=30
    ) as http:
        assert http.get("/meldinger").status_code == 401
    # No certificate and no token: 401 (the console itself still works without one).
    with httpx.Client(base_url=web.base, verify=tls(server_cert, None), timeout=30) as http:
        assert http.get("/api/v1/meldinger").status_code == 401
        assert http.get("/logg-inn").status_code == 200


@pytest.fixture
def mapped_api(start_console: Callable[..., AbstractContextManager[Console]]) -> Iterator[Console]:
    senders = f'[web.api.senders]\n"epj-klient-1" = "{SENDER_A}"\n'
    with start_console(api_extra=senders) as running:
        yield running


def test_client_ids_are_mapped_to_senders(mapped_api: Console) -> None:
    with as_sender(mapped_api, "epj-klient-1") as http:
        listing = http.get("/meldinger")
        assert listing.status_code == 200
        assert [m["msgId"] for m in listing.json()["meldinger"]] == list(
            mapped_api.seeded.msg_ids_a
        )
    # With a mapping, only mapped clients are senders, even one whose id looks like a HER id.
    with as_sender(mapped_api, SENDER_A) as http:
        assert http.get("/meldinger").status_code == 401
    assert AUDIENCE
