"""check_header: a received eb:MessageHeader against the CPA it names."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import MessageHeader, Party, PartyId
from gateway.errors import HeaderInconsistent, HeaderValueNotRecognized, receipt_for
from gateway.partners.checks import (
    ACTION,
    CPA_ID,
    FROM_PARTY_ID,
    FROM_ROLE,
    SERVICE,
    SERVICE_TYPE,
    TO_PARTY_ID,
    TO_ROLE,
    check_header,
)
from gateway.partners.registry import PartnerRegistry
from gateway.testing.cpa import DEFAULT_PARTNER, CpaSpec, write_cpa

OUR_HER = "79768"
AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLAIM = {"service": "BehandlerKrav", "action": "OppgjorsMelding"}

HEADER = MessageHeader(
    from_party=Party((PartyId("8141253", "HER"),), "Behandler"),
    to_party=Party((PartyId("79768", "HER"),), "KontrollUtbetaler"),
    cpa_id="test:cpa:1",
    conversation_id="c-1",
    service="BehandlerKrav",
    service_type="string",
    action="OppgjorsMelding",
    message_id="m-1@speare.test",
    timestamp=AT,
)


@pytest.fixture
def registry(tmp_path: Path) -> PartnerRegistry:
    write_cpa(tmp_path, CpaSpec())  # us 79768 (ENH 889640782) and 8141253, until 2030
    # A CPA between two other parties, and one where the partner may send only a Forespørsel.
    write_cpa(
        tmp_path,
        CpaSpec(
            cpa_id="test:cpa:others",
            us=dataclasses.replace(DEFAULT_PARTNER, her_id="111", role="KontrollUtbetaler"),
        ),
    )
    write_cpa(tmp_path, CpaSpec(cpa_id="test:cpa:narrow", partner_sends=("Foresporsel",)))
    write_cpa(tmp_path, CpaSpec(cpa_id="test:cpa:deaf", partner_sends=(), we_send=()))
    write_cpa(
        tmp_path,
        CpaSpec(
            cpa_id="test:cpa:expired",
            start=datetime(2020, 1, 1, tzinfo=UTC),
            end=datetime(2024, 12, 31, 23, 59, tzinfo=UTC),
        ),
    )
    return PartnerRegistry.load(tmp_path)


def test_accepts_a_header_that_fits_its_cpa(registry: PartnerRegistry) -> None:
    agreement = check_header(HEADER, registry, OUR_HER, at=AT, **CLAIM)

    assert agreement.cpa.cpa_id == "test:cpa:1"
    assert agreement.us.her_id == OUR_HER and agreement.partner.her_id == "8141253"
    assert agreement.sent_as.action == "OppgjorsMelding" and agreement.sent_as.direction == "send"
    assert agreement.received_as.role == "KontrollUtbetaler"
    assert agreement.payload_compressed and agreement.payload_encrypted


def test_accepts_optional_parts_left_out_and_extra_known_ids(registry: PartnerRegistry) -> None:
    header = dataclasses.replace(
        HEADER,
        from_party=Party((PartyId("8141253", "HER"),), None),
        to_party=Party((PartyId("79768", "HER"), PartyId("889640782", "ENH")), None),
        service_type=None,
    )
    assert check_header(header, registry, OUR_HER, at=AT, **CLAIM).cpa.cpa_id == "test:cpa:1"


def test_cpa_in_force_at_both_ends(registry: PartnerRegistry) -> None:
    for at in (datetime(2025, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)):
        check_header(HEADER, registry, OUR_HER, at=at, **CLAIM)


Mutation = Callable[[MessageHeader], MessageHeader]


def _from(*ids: PartyId, role: str | None = "Behandler") -> Mutation:
    return lambda h: dataclasses.replace(h, from_party=Party(ids, role))


def _to(*ids: PartyId, role: str | None = "KontrollUtbetaler") -> Mutation:
    return lambda h: dataclasses.replace(h, to_party=Party(ids, role))


def _set(**changes: str | None) -> Mutation:
    return lambda h: dataclasses.replace(h, **changes)  # type: ignore[arg-type]


NR = HeaderValueNotRecognized
INC = HeaderInconsistent
REJECTIONS: dict[str, tuple[Mutation, type, str, str]] = {
    "unknown cpa": (_set(cpa_id="nav:qass:1"), NR, CPA_ID, "CPA-id 'nav:qass:1' er ukjent"),
    "expired cpa": (
        _set(cpa_id="test:cpa:expired"),
        INC,
        CPA_ID,
        "gjelder fra 2020-01-01 00:00:00 UTC til 2024-12-31 23:59:00 UTC",
    ),
    "to without HER": (_to(PartyId("889640782", "ENH")), NR, TO_PARTY_ID, "ingen PartyId av"),
    "to someone else": (
        _to(PartyId("12345", "HER")),
        NR,
        TO_PARTY_ID,
        "adressert til HER-id 12345, men denne mottakeren har HER-id 79768",
    ),
    "cpa of other parties": (
        _set(cpa_id="test:cpa:others"),
        INC,
        CPA_ID,
        "ikke en avtale med HER-id 79768; den gjelder HER-id 111 og HER-id 8141253",
    ),
    "to with a foreign id": (
        _to(PartyId("79768", "HER"), PartyId("999999999", "ENH")),
        INC,
        TO_PARTY_ID,
        "PartyId 999999999 (type ENH), som ikke er en id for HELFO test",
    ),
    "to with an untyped id": (
        _to(PartyId("79768", "HER"), PartyId("79768")),
        INC,
        TO_PARTY_ID,
        "(type uten type)",
    ),
    "from without HER": (_from(PartyId("8141253")), NR, FROM_PARTY_ID, "Avsenderen (eb:From)"),
    "from a stranger": (
        _from(PartyId("555", "HER")),
        INC,
        FROM_PARTY_ID,
        "Avsenderen har HER-id 555, men CPA 'test:cpa:1' er inngått mellom HER-id 79768 og "
        "HER-id 8141253",
    ),
    "from ourselves": (_from(PartyId("79768", "HER")), INC, FROM_PARTY_ID, "HER-id 79768, men"),
    "from with a foreign id": (
        _from(PartyId("8141253", "HER"), PartyId("123", "ENH")),
        INC,
        FROM_PARTY_ID,
        "PartyId 123 (type ENH)",
    ),
    "service not ours": (
        _set(service="Sykmelding"),
        NR,
        SERVICE,
        "Tjenesten 'Sykmelding' tas ikke imot her; forventet 'BehandlerKrav'",
    ),
    "action not ours": (
        _set(action="Svarmelding"),
        NR,
        ACTION,
        "Handlingen 'Svarmelding' tas ikke imot",
    ),
    "action not agreed": (
        _set(cpa_id="test:cpa:narrow"),
        INC,
        ACTION,
        "gir ikke HER-id 8141253 lov til å sende BehandlerKrav/OppgjorsMelding",
    ),
    "service without actions": (
        _set(cpa_id="test:cpa:deaf"),
        INC,
        ACTION,
        "lov til å sende",
    ),
    "service type": (
        _set(service_type="urn:x"),
        INC,
        SERVICE_TYPE,
        "har type 'urn:x', men CPA 'test:cpa:1' sier 'string'",
    ),
    "from role": (
        _from(PartyId("8141253", "HER"), role="Lege"),
        INC,
        FROM_ROLE,
        "Avsenderens rolle er 'Lege', men CPA 'test:cpa:1' gir HER-id 8141253 rollen 'Behandler'",
    ),
    "to role": (
        _to(PartyId("79768", "HER"), role="Nav"),
        INC,
        TO_ROLE,
        "Mottakerens rolle er 'Nav'",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejections_carry_code_location_and_norwegian_detail(
    case: str, registry: PartnerRegistry
) -> None:
    mutate, error_type, location, detail = REJECTIONS[case]

    with pytest.raises((HeaderValueNotRecognized, HeaderInconsistent)) as caught:
        check_header(mutate(HEADER), registry, OUR_HER, at=AT, **CLAIM)

    error = caught.value
    assert type(error) is error_type
    assert error.location == location
    assert detail in error.detail
    expected_code = "ValueNotRecognized" if error_type is NR else "Inconsistent"
    assert receipt_for(error).code == expected_code


def test_not_yet_in_force(registry: PartnerRegistry) -> None:
    with pytest.raises(HeaderInconsistent, match="meldingen ble mottatt 2024-06-01") as caught:
        check_header(HEADER, registry, OUR_HER, at=datetime(2024, 6, 1, tzinfo=UTC), **CLAIM)
    assert caught.value.location == CPA_ID


def test_we_must_be_able_to_receive(tmp_path: Path) -> None:
    # The partner may send it, but our side of the CPA does not list it as CanReceive.
    path = write_cpa(tmp_path, CpaSpec())
    data = path.read_bytes()
    ours = b'tp:id="us_receive_OppgjorsMelding" tp:action="OppgjorsMelding"'
    assert ours in data
    path.write_bytes(data.replace(ours, b'tp:id="us_receive_OppgjorsMelding" tp:action="Annet"'))
    registry = PartnerRegistry.load(tmp_path)

    with pytest.raises(HeaderInconsistent, match="tar HER-id 79768 ikke imot") as caught:
        check_header(HEADER, registry, OUR_HER, at=AT, **CLAIM)
    assert caught.value.location == ACTION


@pytest.mark.conformance
def test_real_envelope_against_real_cpa(standards: Path, tmp_path: Path) -> None:
    (tmp_path / "nav.xml").write_bytes(
        (standards / "ebxml-ebms2/cpa/nav-qass-35065.xml").read_bytes()
    )
    registry = PartnerRegistry.load(tmp_path)
    message = parse_envelope(
        (standards / "ebxml-ebms2/samples/2023_08_29T12_56_58_328.xml").read_bytes()
    )

    agreement = check_header(message.header, registry, OUR_HER, at=AT, **CLAIM)

    assert agreement.cpa.cpa_id == "nav:qass:35065"
    assert agreement.partner.name == "SPEARE AS, flytitnhndevelop"
    assert agreement.payload_compressed and agreement.payload_encrypted
    # The sample was sent in 2023, before this (renewed) test CPA took effect.
    with pytest.raises(HeaderInconsistent) as caught:
        check_header(message.header, registry, OUR_HER, at=message.header.timestamp, **CLAIM)
    assert caught.value.location == CPA_ID
