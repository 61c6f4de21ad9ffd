"""CPA parsing (gateway.partners.cpa), the test CPA writer, and the partner registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from gateway.errors import ConfigurationError
from gateway.partners.cpa import (
    CpaInvalid,
    RetryPolicy,
    load_cpa,
    mail_address_of,
    parse_cpa,
    parse_duration,
)
from gateway.partners.registry import (
    PartnerNotFound,
    PartnerRegistry,
    PartnerRegistryError,
)
from gateway.testing.cpa import (
    DEFAULT_PARTNER,
    DEFAULT_US,
    CpaSpec,
    cpa_xml,
    format_duration,
    write_cpa,
)

REAL_CPA = "ebxml-ebms2/cpa/nav-qass-35065.xml"
CPA_XSD = "ebxml-ebms2/cpp-cpa-2_0.xsd"


def self_signed(common_name: str) -> x509.Certificate:
    """A throwaway self-signed RSA certificate (tests only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def certs() -> dict[str, x509.Certificate]:
    return {
        name: self_signed(name) for name in ("us-sign", "us-crypt", "partner-sign", "partner-crypt")
    }


@pytest.fixture(scope="module")
def full_spec(certs: dict[str, x509.Certificate]) -> CpaSpec:
    """A CPA with all four certificates; the partner's given as PEM bytes."""
    return CpaSpec(
        cpa_id="test:cpa:full",
        us=dataclasses.replace(
            DEFAULT_US,
            signing_certificate=certs["us-sign"],
            encryption_certificate=certs["us-crypt"],
        ),
        partner=dataclasses.replace(
            DEFAULT_PARTNER,
            signing_certificate=certs["partner-sign"].public_bytes(Encoding.PEM),
            encryption_certificate=certs["partner-crypt"].public_bytes(Encoding.PEM),
        ),
        retries=3,
        retry_interval=timedelta(minutes=90),
        persist_duration=timedelta(days=2, hours=6),
    )


# --- the real CPA ----------------------------------------------------------------------------


@pytest.mark.conformance
def test_real_cpa_parses(standards: Path) -> None:
    cpa = load_cpa(standards / REAL_CPA)

    assert cpa.cpa_id == "nav:qass:35065"
    assert cpa.status == "proposed"
    assert cpa.start == datetime(2025, 9, 29, 13, 33, 28, tzinfo=UTC)
    assert cpa.end == datetime(2028, 1, 2, 22, 59, tzinfo=UTC)
    sender, nav = cpa.parties
    assert (sender.name, sender.her_id, sender.enh_id) == (
        "SPEARE AS, flytitnhndevelop",
        "8141253",
        "123456789",
    )
    assert (nav.name, nav.her_id, nav.enh_id) == ("NAV", "79768", "889640782")
    assert cpa.party_by_her("79768") is nav
    assert cpa.other(nav) is sender
    assert {"Behandler", "Lege", "Sykmelder"} <= sender.role_names
    assert "KontrollUtbetaler" in nav.role_names

    claim = sender.can_send("BehandlerKrav", "OppgjorsMelding")
    assert claim is not None and claim.role == "Behandler" and claim.service_type == "string"
    assert sender.can_receive("BehandlerKrav", "OppgjorsMelding") is None
    received = nav.can_receive("BehandlerKrav", "OppgjorsMelding")
    assert received is not None and received.role == "KontrollUtbetaler"
    # gzip inside pkcs7-mime: compressed, then encrypted.
    assert claim.packaging.layers == ("application/pkcs7-mime", "application/x-gzip")
    assert claim.packaging.compressed and claim.packaging.encrypted
    assert "http://www.kith.no/xmlstds/bkm/2006-12-20" in claim.packaging.namespaces
    receipt = nav.can_send("BehandlerKrav", "Svarmelding")
    assert receipt is not None
    assert receipt.packaging.encrypted and not receipt.packaging.compressed

    channel = sender.channel_for(claim)
    assert channel.channel_id == "Partner_channelSMTP0_partner"
    assert channel.transport_protocol == "SMTP"
    assert channel.mail_address == "example@example.com"  # written mailto://example@...
    assert nav.default_channel.mail_address == "example2@example.com"
    assert (channel.ack_requested, channel.ack_signature_requested) == ("always", "perMessage")
    assert channel.duplicate_elimination == "perMessage"
    assert channel.sync_reply_mode == "none"
    assert channel.sender is not None and channel.sender.reliable_messaging is not None
    assert channel.sender.reliable_messaging.retries == 4
    assert channel.sender.reliable_messaging.retry_interval == timedelta(hours=12)
    assert channel.sender.persist_duration == timedelta(days=4)
    assert channel.sender.signature_algorithms == (
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    )
    # The HTTP channel (HarBorgerFrikort) has no reliable messaging and no mail address.
    http = sender.channels["Partner_channelHTTP1_partner"]
    assert http.mail_address is None and http.ack_requested == "never"

    assert set(sender.certificates) == {"Partner_cert_crypt_partner", "Partner_cert_sign_partner"}
    (crypt,) = sender.certificates["Partner_cert_crypt_partner"]
    (sign,) = sender.certificates["Partner_cert_sign_partner"]
    assert sender.encryption_certificate("BehandlerKrav") is crypt
    assert sender.encryption_certificates("BehandlerKrav") == (crypt,)
    assert sender.signing_certificate(claim) is sign
    assert sender.signing_certificates(claim) == (sign,)
    nav_sign = nav.signing_certificate(receipt)
    assert nav_sign is not None
    assert "VELFERDSETATEN" in nav_sign.subject.rfc4514_string()


@pytest.mark.conformance
def test_real_cpa_in_registry(standards: Path, tmp_path: Path) -> None:
    (tmp_path / "nav.xml").write_bytes((standards / REAL_CPA).read_bytes())
    registry = PartnerRegistry.load(tmp_path)
    at = datetime(2026, 3, 1, tzinfo=UTC)

    assert (
        registry.mail_address("79768", "8141253", service="BehandlerKrav", action="Svarmelding")
        == "example@example.com"
    )
    assert registry.retry_policy(
        "79768", "8141253", service="BehandlerKrav", action="Svarmelding", at=at
    ) == RetryPolicy(retries=4, interval=timedelta(hours=12), persist_duration=timedelta(days=4))
    cert = registry.encryption_certificate("79768", "8141253", service="BehandlerKrav")
    assert "NORSK HELSENETT" in cert.subject.rfc4514_string()


@pytest.mark.conformance
@pytest.mark.parametrize(
    "variant",
    ["defaults", "certificates", "no-retries", "plain", "many-actions"],
)
def test_generated_cpa_is_valid_against_official_xsd(
    standards: Path, full_spec: CpaSpec, variant: str
) -> None:
    specs = {
        "defaults": CpaSpec(),
        "certificates": full_spec,
        "no-retries": dataclasses.replace(full_spec, retries=None, persist_duration=None),
        "plain": dataclasses.replace(CpaSpec(), compressed=False, encrypted=False),
        "many-actions": dataclasses.replace(
            CpaSpec(), partner_sends=("OppgjorsMelding", "Forespørsel"), we_send=()
        ),
    }
    schema = etree.XMLSchema(etree.parse(str(standards / CPA_XSD)))
    document = etree.fromstring(cpa_xml(specs[variant]))

    assert schema.validate(document), schema.error_log
    parse_cpa(cpa_xml(specs[variant]))  # and we read back what we write


# --- generated CPAs --------------------------------------------------------------------------


def test_generated_cpa_round_trips(full_spec: CpaSpec, certs: dict[str, x509.Certificate]) -> None:
    cpa = parse_cpa(cpa_xml(full_spec))

    assert cpa.cpa_id == "test:cpa:full" and cpa.status == "agreed"
    us, partner = cpa.parties
    assert (us.her_id, us.enh_id, us.name) == ("79768", "889640782", "HELFO test")
    assert (partner.her_id, partner.enh_id) == ("8141253", None)
    sent = partner.can_send("BehandlerKrav", "OppgjorsMelding")
    assert sent is not None and sent.role == "Behandler"
    assert sent.packaging.compressed and sent.packaging.encrypted
    assert us.can_receive("BehandlerKrav", "OppgjorsMelding") is not None
    assert us.can_send("BehandlerKrav", "Svarmelding") is not None
    assert partner.can_receive("BehandlerKrav", "Svarmelding") is not None
    assert us.encryption_certificate() == certs["us-crypt"]
    assert partner.encryption_certificate("BehandlerKrav") == certs["partner-crypt"]
    assert partner.signing_certificate(sent) == certs["partner-sign"]
    assert us.signing_certificate() == certs["us-sign"]
    channel = partner.channel_for(sent)
    assert channel.mail_address == "behandler@speare.test"
    assert channel.sender is not None and channel.sender.reliable_messaging is not None
    assert channel.sender.reliable_messaging.retries == 3
    assert channel.sender.reliable_messaging.retry_interval == timedelta(minutes=90)
    assert channel.sender.persist_duration == timedelta(days=2, hours=6)


def test_generated_cpa_without_certificates_or_layers() -> None:
    cpa = parse_cpa(cpa_xml(dataclasses.replace(CpaSpec(), compressed=False, encrypted=False)))
    _, partner = cpa.parties
    sent = partner.can_send("BehandlerKrav", "OppgjorsMelding")

    assert sent is not None and sent.packaging.layers == ()
    assert not sent.packaging.compressed and not sent.packaging.encrypted
    assert partner.encryption_certificate() is None
    assert partner.signing_certificate(sent) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT720M", timedelta(hours=12)),
        ("P4D", timedelta(days=4)),
        ("P1DT2H3M4.5S", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("PT0S", timedelta(0)),
        ("P0Y0M2D", timedelta(days=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "-P1D", "P1M", "P2Y", "12h", "PT1.5M"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|years or months"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value", [timedelta(0), timedelta(hours=12), timedelta(days=2, seconds=61), timedelta(days=4)]
)
def test_format_duration_round_trips(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("mailto:a@b.no", "a@b.no"),
        ("mailto://example@example.com", "example@example.com"),
        ("MAILTO:a@b.no?subject=x", "a@b.no"),
        ("mailto:nobody", None),
        ("https://nhn-gw-q.nav.no:9443/ebxml/msh", None),
    ],
)
def test_mail_address_of(uri: str, address: str | None) -> None:
    assert mail_address_of(uri) == address


# --- bad files -------------------------------------------------------------------------------


def _replace(old: str, new: str) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        assert old.encode() in data, old
        return data.replace(old.encode(), new.encode(), 1)

    return mutate


def _drop_second_party(data: bytes) -> bytes:
    root = etree.fromstring(data)
    parties = root.findall("{*}PartyInfo")
    root.remove(parties[1])
    return etree.tostring(root)


BAD_FILES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not xml": (lambda _: b"<CollaborationProtocolAgreement", "not readable XML"),
    "dtd": (
        lambda d: d.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "x">]>', 1),
        "not readable XML",
    ),
    "other root": (lambda _: b"<root/>", "root element is root"),
    "no cpaid": (_replace(' tp:cpaid="test:cpa:full"', ""), "has no cpaid attribute"),
    "no status": (_replace('<tp:Status tp:value="agreed"/>', ""), "has no Status"),
    "bad start": (
        _replace("<tp:Start>2025-01-01T00:00:00Z", "<tp:Start>yesterday"),
        "Start 'yesterday' is not an xsd:dateTime",
    ),
    "end before start": (
        _replace("<tp:End>2030-01-01T00:00:00Z", "<tp:End>2024-01-01T00:00:00Z"),
        "End 2024-01-01T00:00:00+00:00 is not after Start",
    ),
    "one party": (_drop_second_party, "has 1 PartyInfo elements"),
    "same HER twice": (
        _replace('tp:type="HER">8141253', 'tp:type="HER">79768'),
        "both parties have HER id 79768",
    ),
    "no HER": (
        _replace('tp:type="HER">8141253', 'tp:type="NPR">8141253'),
        "no PartyId of type HER",
    ),
    "unknown cert": (
        _replace(
            'SigningCertificateRef tp:certId="partner_cert_sign"',
            'SigningCertificateRef tp:certId="nope"',
        ),
        "SigningCertificateRef names certificate 'nope'",
    ),
    "unknown application cert": (
        _replace(
            'ApplicationCertificateRef tp:certId="us_cert_crypt"',
            'ApplicationCertificateRef tp:certId="partner_cert_crypt"',
        ),
        "ApplicationCertificateRef names certificate 'partner_cert_crypt'",
    ),
    "bad cert": (
        _replace("<ds:X509Certificate>MII", "<ds:X509Certificate>!!!"),
        "is not a base64 DER X.509 certificate",
    ),
    "unknown channel": (
        _replace("<tp:ChannelId>partner_channel_smtp<", "<tp:ChannelId>us_channel_smtp<"),
        "uses channel 'us_channel_smtp'",
    ),
    "unknown default channel": (
        _replace('tp:defaultMshChannelId="us_channel_smtp"', 'tp:defaultMshChannelId="x"'),
        "defaultMshChannelId 'x' names no DeliveryChannel",
    ),
    "unknown package": (
        _replace('tp:packageId="partner_package_request"', 'tp:packageId="nope"'),
        "packageId 'nope', which names no Packaging",
    ),
    "unknown transport": (
        _replace(
            'tp:transportId="us_transport_smtp" tp:docExchangeId',
            'tp:transportId="nope" tp:docExchangeId',
        ),
        "no Transport 'nope'",
    ),
    "bad retries": (_replace("<tp:Retries>3<", "<tp:Retries>many<"), "Retries 'many'"),
    "negative retries": (_replace("<tp:Retries>3<", "<tp:Retries>-1<"), "Retries -1 is negative"),
    "bad interval": (
        _replace("<tp:RetryInterval>PT1H30M<", "<tp:RetryInterval>P1M<"),
        "RetryInterval: 'P1M' uses years or months",
    ),
    "bad persist": (
        _replace("<tp:PersistDuration>P2DT6H<", "<tp:PersistDuration>soon<"),
        "PersistDuration: 'soon' is not an xsd:duration",
    ),
    "bad ack": (
        _replace('tp:ackRequested="always"', 'tp:ackRequested="sometimes"'),
        "ackRequested 'sometimes' is not one of",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_cpa_file_names_file_and_problem(case: str, full_spec: CpaSpec, tmp_path: Path) -> None:
    mutate, reason = BAD_FILES[case]
    path = tmp_path / "partner.xml"
    path.write_bytes(mutate(cpa_xml(full_spec)))

    with pytest.raises(CpaInvalid) as caught:
        load_cpa(path)

    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: ")
    assert isinstance(caught.value, ConfigurationError)


def test_missing_cpa_file(tmp_path: Path) -> None:
    with pytest.raises(CpaInvalid, match="cannot be read"):
        load_cpa(tmp_path / "absent.xml")


# --- registry --------------------------------------------------------------------------------


@pytest.fixture
def partners_dir(tmp_path: Path, full_spec: CpaSpec) -> Path:
    directory = tmp_path / "partners"
    directory.mkdir()
    write_cpa(directory, full_spec)
    write_cpa(
        directory,
        CpaSpec(
            cpa_id="test:cpa:other",
            partner=dataclasses.replace(DEFAULT_PARTNER, her_id="555", mail_address="x@y.test"),
            retries=None,
        ),
    )
    (directory / "README.txt").write_text("not a CPA; ignored")
    (directory / ".half-written.xml").write_text("<tp:Coll")  # a temporary: ignored
    return directory


def test_registry_loads_every_cpa_and_looks_up(
    partners_dir: Path, certs: dict[str, x509.Certificate]
) -> None:
    registry = PartnerRegistry.load(partners_dir)

    assert len(registry) == 2 and registry.directory == partners_dir
    assert {c.cpa_id for c in registry} == {"test:cpa:full", "test:cpa:other"}
    full = registry.by_cpa_id("test:cpa:full")
    assert full is not None and full.source == str(partners_dir / "test_cpa_full.xml")
    assert registry.by_cpa_id("nav:qass:35065") is None
    assert registry.by_parties("79768", "8141253") is full
    assert registry.by_parties("8141253", "79768") is full  # either way round
    assert registry.by_parties("79768", "999") is None
    assert registry.by_parties("79768", "8141253", at=datetime(2031, 1, 1, tzinfo=UTC)) is None

    assert registry.mail_address("79768", "8141253") == "behandler@speare.test"
    assert (
        registry.mail_address("79768", "555", service="BehandlerKrav", action="Svarmelding")
        == "x@y.test"
    )
    assert registry.encryption_certificate("79768", "8141253") == certs["partner-crypt"]
    assert (
        registry.signing_certificate(
            "79768", "8141253", service="BehandlerKrav", action="OppgjorsMelding"
        )
        == certs["partner-sign"]
    )
    assert registry.retry_policy(
        "79768", "8141253", service="BehandlerKrav", action="Svarmelding"
    ) == RetryPolicy(3, timedelta(minutes=90), timedelta(days=2, hours=6))
    assert registry.retry_policy("79768", "555") is None  # the CPA asks for none

    with pytest.raises(PartnerNotFound, match="no CPA between HER 79768 and HER 999"):
        registry.mail_address("79768", "999")
    with pytest.raises(PartnerNotFound, match="no encryption certificate"):
        registry.encryption_certificate("79768", "555")
    with pytest.raises(PartnerNotFound, match="no signing certificate"):
        registry.signing_certificate("79768", "555")


def test_registry_prefers_the_newest_cpa_in_force(tmp_path: Path) -> None:
    old = CpaSpec(cpa_id="old", end=datetime(2026, 6, 1, tzinfo=UTC))
    new = CpaSpec(cpa_id="new", start=datetime(2026, 1, 1, tzinfo=UTC))
    write_cpa(tmp_path, old)
    write_cpa(tmp_path, new)
    registry = PartnerRegistry.load(tmp_path)

    def chosen(at: datetime | None) -> str | None:
        cpa = registry.by_parties("79768", "8141253", at=at)
        return None if cpa is None else cpa.cpa_id

    assert chosen(datetime(2025, 6, 1, tzinfo=UTC)) == "old"
    assert chosen(datetime(2026, 3, 1, tzinfo=UTC)) == "new"  # both in force: newest
    assert chosen(None) == "new"


def test_registry_load_reports_every_bad_file_and_keeps_the_good(
    partners_dir: Path, full_spec: CpaSpec
) -> None:
    (partners_dir / "broken.xml").write_bytes(b"<tp:oops")
    write_cpa(partners_dir, full_spec, name="zz-duplicate.xml")

    with pytest.raises(PartnerRegistryError) as caught:
        PartnerRegistry.load(partners_dir)

    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert [p.path.name for p in error.problems] == ["broken.xml", "zz-duplicate.xml"]
    assert "not readable XML" in error.problems[0].reason
    assert "CPAId 'test:cpa:full' is already used by" in error.problems[1].reason
    assert "2 CPA file(s) cannot be used" in str(error) and "broken.xml" in str(error)
    assert {c.cpa_id for c in error.partial} == {"test:cpa:full", "test:cpa:other"}

    scanned = PartnerRegistry.scan(partners_dir)
    assert len(scanned.registry) == 2 and len(scanned.problems) == 2


def test_registry_of_an_empty_or_missing_directory(tmp_path: Path) -> None:
    assert len(PartnerRegistry.load(tmp_path)) == 0
    with pytest.raises(PartnerRegistryError, match="cannot list the partners directory"):
        PartnerRegistry.load(tmp_path / "absent")


def test_reload_keeps_the_old_registry_on_a_broken_file(
    partners_dir: Path, full_spec: CpaSpec
) -> None:
    registry = PartnerRegistry.load(partners_dir)
    # The operator edits a CPA and breaks it, and adds a new partner: nothing changes.
    path = partners_dir / "test_cpa_full.xml"
    path.write_bytes(path.read_bytes().replace(b"<tp:Retries>3<", b"<tp:Retries>x<"))
    write_cpa(
        partners_dir,
        dataclasses.replace(
            full_spec,
            cpa_id="test:cpa:third",
            partner=dataclasses.replace(DEFAULT_PARTNER, her_id="777"),
        ),
    )

    kept, problems = registry.reloaded()

    assert kept is registry
    assert [p.path for p in problems] == [path]
    assert kept.by_cpa_id("test:cpa:third") is None
    assert kept.by_cpa_id("test:cpa:full") is not None

    # Fixed: the next reload takes the new directory.
    write_cpa(partners_dir, full_spec)
    fresh, problems = registry.reloaded()
    assert problems == ()
    assert fresh is not registry
    assert fresh.by_cpa_id("test:cpa:third") is not None


def test_registry_of_rejects_repeated_cpa_ids() -> None:
    cpa = parse_cpa(cpa_xml())
    with pytest.raises(ValueError, match="CPAId 'test:cpa:1' is in both"):
        PartnerRegistry.of([cpa, cpa])
    with pytest.raises(ValueError, match="not loaded from a directory"):
        PartnerRegistry.of([cpa]).reloaded()
