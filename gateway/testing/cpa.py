"""Write CPAs (CPPA 2.0) for tests: us and one partner, one service, SMTP both ways.

The shape follows NAV/Helfo's real CPAs (see ``gateway.partners.cpa``): qualified attributes,
an SMTP ``mailto:`` endpoint per party, reliable messaging on both DocExchange bindings, the
encryption certificate as ``ApplicationCertificateRef``, the signing certificate as
``SenderNonRepudiation/SigningCertificateRef``, and the request payload packaged as gzip inside
``application/pkcs7-mime`` (each layer optional). The output validates against
``cpp-cpa-2_0.xsd`` (checked in ``tests/test_partners_cpa.py``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.ebxml.namespaces import APPREC_NS, BKM_NS, DS_NS, MSGHEAD_NS, XLINK_NS
from gateway.partners.cpa import CPPA_NS

__all__ = [
    "DEFAULT_PARTNER",
    "DEFAULT_US",
    "CertificateInput",
    "CpaPartySpec",
    "CpaSpec",
    "cpa_xml",
    "format_duration",
    "write_cpa",
]

#: A certificate as PEM bytes or as a ``cryptography`` object.
CertificateInput = bytes | x509.Certificate

_TNS: Final = f"{{{CPPA_NS}}}"
_DS: Final = f"{{{DS_NS}}}"
_XLINK: Final = f"{{{XLINK_NS}}}"
_NSMAP: Final = {"tp": CPPA_NS, "ds": DS_NS, "xlink": XLINK_NS}
_EBXML_HEADER_NS: Final = "http://www.oasis-open.org/committees/ebxml-msg/schema"
_XMLDSIG: Final = "http://www.w3.org/2000/09/xmldsig#"
_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
_RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass(frozen=True, slots=True)
class CpaPartySpec:
    """One party of a test CPA."""

    her_id: str
    name: str
    mail_address: str
    role: str
    enh_id: str | None = None
    signing_certificate: CertificateInput | None = None
    encryption_certificate: CertificateInput | None = None


#: Us, as ``tests/conftest.py``'s IDENTITY and ``gateway.testing.messages.Route`` name us.
DEFAULT_US: Final = CpaPartySpec(
    her_id="79768",
    name="HELFO test",
    mail_address="mottak@kuhr.test",
    role="KontrollUtbetaler",
    enh_id="889640782",
)
#: The sender of ``gateway.testing.messages.Route``.
DEFAULT_PARTNER: Final = CpaPartySpec(
    her_id="8141253",
    name="Legekontoret test",
    mail_address="behandler@speare.test",
    role="Behandler",
)


@dataclass(frozen=True, slots=True)
class CpaSpec:
    """Everything a test CPA says. ``partner_sends`` are the actions the partner sends us
    (claims), ``we_send`` the ones we send back (receipts). ``retries=None`` leaves out
    ``ReliableMessaging``."""

    cpa_id: str = "test:cpa:1"
    us: CpaPartySpec = DEFAULT_US
    partner: CpaPartySpec = DEFAULT_PARTNER
    service: str = "BehandlerKrav"
    service_type: str | None = "string"
    partner_sends: tuple[str, ...] = ("OppgjorsMelding",)
    we_send: tuple[str, ...] = ("Svarmelding",)
    retries: int | None = 4
    retry_interval: timedelta = timedelta(hours=12)
    persist_duration: timedelta | None = timedelta(days=4)
    start: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))
    end: datetime = field(default_factory=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    status: str = "agreed"
    compressed: bool = True
    encrypted: bool = True
    #: The AppRec namespace the reply part declares (1.1: ``.../apprec/2012-02-15``).
    apprec_namespace: str = APPREC_NS
    #: ``MessagingCharacteristics/@duplicateElimination`` of both parties' channels.
    duplicate_elimination: str = "perMessage"


def format_duration(value: timedelta) -> str:
    """``value`` as an ``xsd:duration`` (``P4D``, ``PT12H``, ``P1DT30M``)."""
    total = int(value.total_seconds())
    if total < 0 or total != value.total_seconds():
        raise ValueError(f"{value!r}: only whole, non-negative seconds")
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def cpa_xml(spec: CpaSpec = CpaSpec()) -> bytes:
    """The CPA document for ``spec`` (UTF-8, with an XML declaration)."""
    root = _el("CollaborationProtocolAgreement", cpaid=spec.cpa_id, version="2_0b")
    _el("Status", root, value=spec.status)
    _el("Start", root).text = _xsd_datetime(spec.start)
    _el("End", root).text = _xsd_datetime(spec.end)
    _party(root, spec, "us", spec.us, sends=spec.we_send, receives=spec.partner_sends)
    _party(root, spec, "partner", spec.partner, sends=spec.partner_sends, receives=spec.we_send)
    for prefix in ("us", "partner"):
        _simple_part(root, f"{prefix}_msg_header", "text/xml", [(_EBXML_HEADER_NS, "2.0")])
        _simple_part(
            root, f"{prefix}_request", "application/xml", [(MSGHEAD_NS, "1.2"), (BKM_NS, "1.0")]
        )
        version = "1.0" if spec.apprec_namespace == APPREC_NS else "1.1"
        _simple_part(
            root,
            f"{prefix}_reply",
            "application/xml",
            [(MSGHEAD_NS, "1.2"), (spec.apprec_namespace, version)],
        )
    for prefix in ("us", "partner"):
        _packaging(root, f"{prefix}_package_signal", prefix, None, [])
        request_layers = (["application/x-gzip"] if spec.compressed else []) + (
            ["application/pkcs7-mime"] if spec.encrypted else []
        )
        _packaging(root, f"{prefix}_package_request", prefix, "request", request_layers)
        reply_layers = ["application/pkcs7-mime"] if spec.encrypted else []
        _packaging(root, f"{prefix}_package_reply", prefix, "reply", reply_layers)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_cpa(directory: Path, spec: CpaSpec = CpaSpec(), *, name: str | None = None) -> Path:
    """Write ``spec`` as ``directory/<name or the CPAId>.xml`` and return the path."""
    filename = name or re.sub(r"[^A-Za-z0-9._-]", "_", spec.cpa_id) + ".xml"
    path = directory / filename
    path.write_bytes(cpa_xml(spec))
    return path


# --- building blocks -------------------------------------------------------------------------


def _el(tag: str, parent: etree._Element | None = None, **attrs: str) -> etree._Element:
    qualified = {f"{_TNS}{key}": value for key, value in attrs.items()}
    if parent is None:
        return etree.Element(f"{_TNS}{tag}", qualified, nsmap=_NSMAP)
    return etree.SubElement(parent, f"{_TNS}{tag}", qualified)


def _xsd_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der_base64(certificate: CertificateInput) -> str:
    cert = (
        certificate
        if isinstance(certificate, x509.Certificate)
        else x509.load_pem_x509_certificate(certificate)
    )
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def _ident(text: str) -> str:
    """A piece of an XML ID (NCName) from an action name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _party(
    root: etree._Element,
    spec: CpaSpec,
    prefix: str,
    party: CpaPartySpec,
    *,
    sends: tuple[str, ...],
    receives: tuple[str, ...],
) -> None:
    other = "partner" if prefix == "us" else "us"
    info = _el(
        "PartyInfo",
        root,
        partyName=party.name,
        defaultMshChannelId=f"{prefix}_channel_smtp",
        defaultMshPackageId=f"{prefix}_package_signal",
    )
    _el("PartyId", info, type="HER").text = party.her_id
    if party.enh_id:
        _el("PartyId", info, type="ENH").text = party.enh_id
    _xlink(_el("PartyRef", info), "https://example.test/parties")

    role = _el("CollaborationRole", info)
    _xlink(
        _el("ProcessSpecification", role, name=spec.service, version="1.0"),
        f"https://example.test/processes/{spec.service}.xml",
    )
    _xlink(_el("Role", role, name=party.role), f"https://example.test/processes#{party.role}")
    if party.encryption_certificate is not None:
        _el("ApplicationCertificateRef", role, certId=f"{prefix}_cert_crypt")
    binding = _el("ServiceBinding", role)
    service = _el("Service", binding, **({"type": spec.service_type} if spec.service_type else {}))
    service.text = spec.service
    for kind, actions, package, direction in (
        ("CanSend", sends, "request" if prefix == "partner" else "reply", "send"),
        ("CanReceive", receives, "request" if prefix == "us" else "reply", "receive"),
    ):
        opposite = "receive" if direction == "send" else "send"
        for action in actions:
            can = _el(kind, binding)
            this = _el(
                "ThisPartyActionBinding",
                can,
                id=f"{prefix}_{direction}_{_ident(action)}",
                action=action,
                packageId=f"{prefix}_package_{package}",
            )
            _el(
                "BusinessTransactionCharacteristics",
                this,
                isNonRepudiationRequired="true",
                isNonRepudiationReceiptRequired="true",
                isAuthorizationRequired="false",
                isIntelligibleCheckRequired="false",
                timeToPerform="P180M",
            )
            _el("ChannelId", this).text = f"{prefix}_channel_smtp"
            _el("OtherPartyActionBinding", can).text = f"{other}_{opposite}_{_ident(action)}"

    for cert_id, certificate in (
        (f"{prefix}_cert_sign", party.signing_certificate),
        (f"{prefix}_cert_crypt", party.encryption_certificate),
    ):
        if certificate is None:
            continue
        element = _el("Certificate", info, certId=cert_id)
        key_info = etree.SubElement(element, f"{_DS}KeyInfo")
        data = etree.SubElement(key_info, f"{_DS}X509Data")
        etree.SubElement(data, f"{_DS}X509Certificate").text = _der_base64(certificate)

    channel = _el(
        "DeliveryChannel",
        info,
        channelId=f"{prefix}_channel_smtp",
        transportId=f"{prefix}_transport_smtp",
        docExchangeId=f"{prefix}_docexchange_smtp",
    )
    _el(
        "MessagingCharacteristics",
        channel,
        syncReplyMode="none",
        ackRequested="always",
        ackSignatureRequested="perMessage",
        duplicateElimination=spec.duplicate_elimination,
    )
    transport = _el("Transport", info, transportId=f"{prefix}_transport_smtp")
    _el("TransportProtocol", _el("TransportSender", transport), version="1.1").text = "SMTP"
    receiver = _el("TransportReceiver", transport)
    _el("TransportProtocol", receiver, version="1.1").text = "SMTP"
    _el("Endpoint", receiver, uri=f"mailto:{party.mail_address}", type="allPurpose")

    exchange = _el("DocExchange", info, docExchangeId=f"{prefix}_docexchange_smtp")
    for side in ("Sender", "Receiver"):
        bound = _el(f"ebXML{side}Binding", exchange, version="2.0")
        if spec.retries is not None:
            reliable = _el("ReliableMessaging", bound)
            _el("Retries", reliable).text = str(spec.retries)
            _el("RetryInterval", reliable).text = format_duration(spec.retry_interval)
            _el("MessageOrderSemantics", reliable).text = "NotGuaranteed"
        if spec.persist_duration is not None:
            _el("PersistDuration", bound).text = format_duration(spec.persist_duration)
        if side == "Sender" and party.signing_certificate is None:
            continue  # SenderNonRepudiation requires a SigningCertificateRef
        non_repudiation = _el(f"{side}NonRepudiation", bound)
        _el("NonRepudiationProtocol", non_repudiation).text = _XMLDSIG
        _el("HashFunction", non_repudiation).text = _SHA256
        _el("SignatureAlgorithm", non_repudiation, w3c=_RSA_SHA256).text = _RSA_SHA256
        if side == "Sender":
            _el("SigningCertificateRef", non_repudiation, certId=f"{prefix}_cert_sign")


def _xlink(element: etree._Element, href: str) -> None:
    element.set(f"{_XLINK}type", "simple")
    element.set(f"{_XLINK}href", href)


def _simple_part(
    root: etree._Element, part_id: str, mimetype: str, namespaces: list[tuple[str, str]]
) -> None:
    part = _el("SimplePart", root, id=part_id, mimetype=mimetype)
    for namespace, version in namespaces:
        _el(
            "NamespaceSupported", part, location=f"{namespace}.xsd", version=version
        ).text = namespace


def _packaging(
    root: etree._Element, package_id: str, prefix: str, payload: str | None, layers: list[str]
) -> None:
    """A Packaging: the header plus ``payload`` wrapped in ``layers`` (innermost first)."""
    packaging = _el("Packaging", root, id=package_id)
    _el("ProcessingCapabilities", packaging, parse="true", generate="true")
    composites = _el("CompositeList", packaging)
    inner = None if payload is None else f"{prefix}_{payload}"
    for number, mimetype in enumerate(layers):
        layer_id = f"{package_id}_layer{number}"
        params = (
            {"mimeparameters": 'smime-type="enveloped-data"'}
            if mimetype == "application/pkcs7-mime"
            else {}
        )
        encapsulation = _el("Encapsulation", composites, id=layer_id, mimetype=mimetype, **params)
        _el("Constituent", encapsulation, idref=str(inner), excludedFromSignature="false")
        inner = layer_id
    composite = _el(
        "Composite",
        composites,
        id=f"{package_id}_message",
        mimetype="multipart/related",
        mimeparameters="type=text/xml",
    )
    _el("Constituent", composite, idref=f"{prefix}_msg_header", excludedFromSignature="false")
    if inner is not None:
        _el("Constituent", composite, idref=inner, excludedFromSignature="false")
