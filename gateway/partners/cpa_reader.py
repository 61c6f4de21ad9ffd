"""The CPA parser: ``parse_cpa``/``load_cpa`` turn a CPPA 2.0 document into ``Cpa`` values.

What is read, and how, is described in ``gateway.partners.cpa``. Every error is a
``CpaInvalid`` naming the file and the element at fault.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from lxml import etree

from gateway.ebxml.model import PartyId
from gateway.errors import NotXml
from gateway.partners.cpa_model import (
    CPPA_NS,
    ActionBinding,
    CollaborationRole,
    Cpa,
    CpaInvalid,
    CpaParty,
    DeliveryChannel,
    ExchangeBinding,
    Packaging,
    PerMessage,
    ReliableMessaging,
)
from gateway.validation.safe_xml import parse_xml

__all__ = ["load_cpa", "parse_cpa", "parse_duration"]

_DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
#: The ebXML header's namespace as CPAs name it in ``NamespaceSupported`` (no ``msg-header`` file).
_EBXML_HEADER_NAMESPACES: Final = frozenset(
    {
        "http://www.oasis-open.org/committees/ebxml-msg/schema",
        "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd",
    }
)
#: CPA files are operator-installed and small (the real one is 160 KB).
_MAX_CPA_BYTES: Final = 16 * 1024 * 1024
_PER_MESSAGE: Final = frozenset({"always", "never", "perMessage"})
_Certs = tuple[x509.Certificate, ...]

# --- small parsers ---------------------------------------------------------------------------

_DURATION: Final = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)


def parse_duration(text: str) -> timedelta:
    """An ``xsd:duration`` as a ``timedelta`` (``PT720M`` -> 12 hours, ``P4D`` -> 4 days).

    Raises ``ValueError`` for negative durations, malformed text, and non-zero years or months
    (which have no fixed length).
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise ValueError(f"{text!r} is not an xsd:duration such as PT720M or P4D")
    parts = match.groupdict()
    if int(parts["years"] or 0) or int(parts["months"] or 0):
        raise ValueError(f"{text!r} uses years or months, which have no fixed length")
    return timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=float(parts["seconds"] or 0),
    )


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- parse -----------------------------------------------------------------------------------


def load_cpa(path: Path) -> Cpa:
    """Read and parse the CPA file at ``path``; ``CpaInvalid`` names the file on any problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CpaInvalid(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    return parse_cpa(data, source=str(path))


def parse_cpa(data: bytes, *, source: str = "<cpa>") -> Cpa:
    """Parse a CPA document; ``source`` (a file name) is used in error messages."""
    return _Reader(source).cpa(data)


class _Reader:
    """Parses one CPA; every error names ``source`` and the element at fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, reason: str) -> CpaInvalid:
        return CpaInvalid(self.source, reason)

    # -- element access --

    def attr(self, el: etree._Element, name: str, *, required: bool = True) -> str | None:
        value = el.get(f"{{{CPPA_NS}}}{name}")
        if value is None:
            value = el.get(name)
        if value is not None and value.strip():
            return value.strip()
        if required:
            raise self.fail(f"{_name(el)} has no {name} attribute")
        return None

    def req_attr(self, el: etree._Element, name: str) -> str:
        value = self.attr(el, name)
        assert value is not None  # attr() raised otherwise
        return value

    def children(self, el: etree._Element, name: str) -> list[etree._Element]:
        return el.findall(f"{{{CPPA_NS}}}{name}")

    def child(self, el: etree._Element, name: str) -> etree._Element:
        found = el.find(f"{{{CPPA_NS}}}{name}")
        if found is None:
            raise self.fail(f"{_name(el)} has no {name}")
        return found

    def opt_child(self, el: etree._Element, name: str) -> etree._Element | None:
        return el.find(f"{{{CPPA_NS}}}{name}")

    def text(self, el: etree._Element, name: str) -> str:
        value = _text_of(self.child(el, name))
        if not value:
            raise self.fail(f"{_name(el)}/{name} is empty")
        return value

    def opt_text(self, el: etree._Element, name: str) -> str | None:
        found = self.opt_child(el, name)
        if found is None:
            return None
        return _text_of(found) or None

    # -- document --

    def cpa(self, data: bytes) -> Cpa:
        try:
            root = parse_xml(data, max_bytes=_MAX_CPA_BYTES)
        except NotXml as exc:
            raise self.fail(f"not readable XML: {exc.detail}") from exc
        etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
        if root.tag != f"{{{CPPA_NS}}}CollaborationProtocolAgreement":
            raise self.fail(
                f"root element is {_name(root)}, not CollaborationProtocolAgreement "
                f"in namespace {CPPA_NS}"
            )
        cpa_id = self.req_attr(root, "cpaid")
        status = self.req_attr(self.child(root, "Status"), "value")
        start = self.when(root, "Start")
        end = self.when(root, "End")
        if end <= start:
            raise self.fail(f"End {end.isoformat()} is not after Start {start.isoformat()}")
        packagings = self.packagings(root)
        party_elements = self.children(root, "PartyInfo")
        if len(party_elements) != 2:
            raise self.fail(f"has {len(party_elements)} PartyInfo elements; a CPA has exactly 2")
        first, second = (self.party(el, packagings) for el in party_elements)
        if first.her_id == second.her_id:
            raise self.fail(f"both parties have HER id {first.her_id}")
        return Cpa(
            cpa_id=cpa_id,
            version=self.attr(root, "version", required=False) or "",
            status=status,
            start=start,
            end=end,
            parties=(first, second),
            source=self.source,
        )

    def when(self, root: etree._Element, name: str) -> datetime:
        text = self.text(root, name)
        try:
            return _datetime(text)
        except ValueError as exc:
            raise self.fail(f"{name} {text!r} is not an xsd:dateTime") from exc

    def party(self, el: etree._Element, packagings: Mapping[str, Packaging]) -> CpaParty:
        name = self.req_attr(el, "partyName")
        party_ids = tuple(
            PartyId(_text_of(p), self.attr(p, "type", required=False))
            for p in self.children(el, "PartyId")
        )
        if not party_ids or any(not p.value for p in party_ids):
            raise self.fail(f"PartyInfo {name!r} has no PartyId (or an empty one)")
        if not any(p.type == "HER" for p in party_ids):
            raise self.fail(f"PartyInfo {name!r} has no PartyId of type HER")
        certificates = {
            self.req_attr(c, "certId"): self.certificate(c)
            for c in self.children(el, "Certificate")
        }
        doc_exchanges = {
            self.req_attr(d, "docExchangeId"): d for d in self.children(el, "DocExchange")
        }
        transports = {self.req_attr(t, "transportId"): t for t in self.children(el, "Transport")}
        channels = {
            channel.channel_id: channel
            for channel in (
                self.channel(c, transports, doc_exchanges, certificates)
                for c in self.children(el, "DeliveryChannel")
            )
        }
        roles = tuple(
            self.role(r, name, packagings, channels, certificates)
            for r in self.children(el, "CollaborationRole")
        )
        default_channel_id = self.req_attr(el, "defaultMshChannelId")
        if default_channel_id not in channels:
            raise self.fail(
                f"PartyInfo {name!r}: defaultMshChannelId {default_channel_id!r} names no "
                "DeliveryChannel"
            )
        return CpaParty(
            name=name,
            party_ids=party_ids,
            roles=roles,
            certificates=certificates,
            channels=channels,
            default_channel_id=default_channel_id,
        )

    def certificate(self, el: etree._Element) -> _Certs:
        """Every end-entity certificate in the ``ds:KeyInfo`` (several during a rollover; CA
        certificates beside them are a chain, not candidates), in file order."""
        cert_id = self.req_attr(el, "certId")
        found: list[x509.Certificate] = []
        for encoded in el.iterfind(f".//{{{_DS_NS}}}X509Certificate"):
            text = "".join((encoded.text or "").split())
            try:
                found.append(x509.load_der_x509_certificate(base64.b64decode(text, validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise self.fail(
                    f"Certificate {cert_id!r} is not a base64 DER X.509 certificate"
                ) from exc
        if not found:
            raise self.fail(f"Certificate {cert_id!r} has no ds:X509Certificate")
        end_entities = [c for c in found if not self.is_ca(cert_id, c)]
        return tuple(dict.fromkeys(end_entities or found))

    def is_ca(self, cert_id: str, cert: x509.Certificate) -> bool:
        try:
            return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            return False
        except ValueError as exc:  # duplicate or malformed extensions
            raise self.fail(f"Certificate {cert_id!r} has malformed extensions: {exc}") from exc

    def channel(
        self,
        el: etree._Element,
        transports: Mapping[str, etree._Element],
        doc_exchanges: Mapping[str, etree._Element],
        certificates: Mapping[str, _Certs],
    ) -> DeliveryChannel:
        channel_id = self.req_attr(el, "channelId")
        transport_id = self.req_attr(el, "transportId")
        exchange_id = self.req_attr(el, "docExchangeId")
        if transport_id not in transports:
            raise self.fail(f"DeliveryChannel {channel_id!r}: no Transport {transport_id!r}")
        if exchange_id not in doc_exchanges:
            raise self.fail(f"DeliveryChannel {channel_id!r}: no DocExchange {exchange_id!r}")
        characteristics = self.child(el, "MessagingCharacteristics")
        protocol, endpoint = self.transport(transports[transport_id])
        exchange = doc_exchanges[exchange_id]
        sender_el = self.opt_child(exchange, "ebXMLSenderBinding")
        receiver_el = self.opt_child(exchange, "ebXMLReceiverBinding")
        return DeliveryChannel(
            channel_id=channel_id,
            transport_protocol=protocol,
            endpoint=endpoint,
            sync_reply_mode=self.attr(characteristics, "syncReplyMode", required=False) or "none",
            ack_requested=self.per_message(characteristics, "ackRequested"),
            ack_signature_requested=self.per_message(characteristics, "ackSignatureRequested"),
            duplicate_elimination=self.per_message(characteristics, "duplicateElimination"),
            sender=None if sender_el is None else self.exchange(sender_el, certificates),
            receiver=None if receiver_el is None else self.exchange(receiver_el, certificates),
        )

    def per_message(self, el: etree._Element, name: str) -> PerMessage:
        # The schema's default for all three is perMessage.
        value = self.attr(el, name, required=False) or "perMessage"
        if value not in _PER_MESSAGE:
            raise self.fail(
                f"MessagingCharacteristics/@{name} {value!r} is not one of "
                "always, never, perMessage"
            )
        return value  # type: ignore[return-value]  # checked against _PER_MESSAGE above

    def transport(self, el: etree._Element) -> tuple[str | None, str | None]:
        receiver = self.opt_child(el, "TransportReceiver")
        if receiver is None:
            return None, None
        protocol = self.opt_text(receiver, "TransportProtocol")
        endpoints = [
            (self.attr(e, "type", required=False) or "allPurpose", self.req_attr(e, "uri"))
            for e in self.children(receiver, "Endpoint")
        ]
        preferred = [uri for kind, uri in endpoints if kind == "allPurpose"]
        uris = preferred or [uri for _, uri in endpoints]
        return protocol, (uris[0] if uris else None)

    def exchange(self, el: etree._Element, certificates: Mapping[str, _Certs]) -> ExchangeBinding:
        reliable_el = self.opt_child(el, "ReliableMessaging")
        reliable = None
        if reliable_el is not None:
            retries_text = self.opt_text(reliable_el, "Retries")
            interval_text = self.opt_text(reliable_el, "RetryInterval")
            try:
                retries = None if retries_text is None else int(retries_text)
            except ValueError as exc:
                raise self.fail(f"Retries {retries_text!r} is not an integer") from exc
            if retries is not None and retries < 0:
                raise self.fail(f"Retries {retries} is negative")
            reliable = ReliableMessaging(
                retries=retries,
                retry_interval=self.duration("RetryInterval", interval_text),
                message_order=self.opt_text(reliable_el, "MessageOrderSemantics") or "",
            )
        non_repudiation = self.opt_child(el, "SenderNonRepudiation")
        if non_repudiation is None:
            non_repudiation = self.opt_child(el, "ReceiverNonRepudiation")
        signing_cert_id = hash_function = None
        algorithms: tuple[str, ...] = ()
        if non_repudiation is not None:
            hash_function = self.opt_text(non_repudiation, "HashFunction")
            algorithms = tuple(
                self.attr(a, "w3c", required=False) or _text_of(a)
                for a in self.children(non_repudiation, "SignatureAlgorithm")
            )
            ref = self.opt_child(non_repudiation, "SigningCertificateRef")
            if ref is not None:
                signing_cert_id = self.cert_ref(ref, certificates, "SigningCertificateRef")
        return ExchangeBinding(
            reliable_messaging=reliable,
            persist_duration=self.duration("PersistDuration", self.opt_text(el, "PersistDuration")),
            signing_cert_id=signing_cert_id,
            hash_function=hash_function,
            signature_algorithms=algorithms,
        )

    def duration(self, name: str, text: str | None) -> timedelta | None:
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise self.fail(f"{name}: {exc}") from exc

    def cert_ref(self, el: etree._Element, certificates: Mapping[str, _Certs], what: str) -> str:
        cert_id = self.req_attr(el, "certId")
        if cert_id not in certificates:
            raise self.fail(f"{what} names certificate {cert_id!r}, which this party lacks")
        return cert_id

    def role(
        self,
        el: etree._Element,
        party_name: str,
        packagings: Mapping[str, Packaging],
        channels: Mapping[str, DeliveryChannel],
        certificates: Mapping[str, _Certs],
    ) -> CollaborationRole:
        process = self.req_attr(self.child(el, "ProcessSpecification"), "name")
        role_name = self.req_attr(self.child(el, "Role"), "name")
        cert_ids = tuple(
            self.cert_ref(ref, certificates, "ApplicationCertificateRef")
            for ref in self.children(el, "ApplicationCertificateRef")
        )
        service_binding = self.child(el, "ServiceBinding")
        service_el = self.child(service_binding, "Service")
        service = _text_of(service_el)
        if not service:
            raise self.fail(f"PartyInfo {party_name!r}: empty Service in role {role_name!r}")
        service_type = self.attr(service_el, "type", required=False)
        bindings: list[ActionBinding] = []
        # CanSend/CanReceive may nest (a request and its response); flatten them.
        for kind, direction in (("CanSend", "send"), ("CanReceive", "receive")):
            for can in service_binding.iter(f"{{{CPPA_NS}}}{kind}"):
                this = self.child(can, "ThisPartyActionBinding")
                binding_id = self.req_attr(this, "id")
                channel_ids = tuple(_text_of(c) for c in self.children(this, "ChannelId"))
                for channel_id in channel_ids:
                    if channel_id not in channels:
                        raise self.fail(
                            f"action binding {binding_id!r} uses channel {channel_id!r}, "
                            f"which PartyInfo {party_name!r} does not define"
                        )
                package_id = self.req_attr(this, "packageId")
                if package_id not in packagings:
                    raise self.fail(
                        f"action binding {binding_id!r} uses packageId {package_id!r}, "
                        "which names no Packaging"
                    )
                bindings.append(
                    ActionBinding(
                        binding_id=binding_id,
                        direction="send" if direction == "send" else "receive",
                        service=service,
                        service_type=service_type,
                        action=self.req_attr(this, "action"),
                        role=role_name,
                        channel_ids=channel_ids,
                        packaging=packagings[package_id],
                    )
                )
        return CollaborationRole(
            process=process,
            role=role_name,
            service=service,
            service_type=service_type,
            application_cert_ids=cert_ids,
            bindings=tuple(bindings),
        )

    def packagings(self, root: etree._Element) -> dict[str, Packaging]:
        """Every ``Packaging`` with its payload's layers, keyed by id."""
        simple_parts: dict[str, tuple[str, ...]] = {}
        for part in self.children(root, "SimplePart"):
            simple_parts[self.req_attr(part, "id")] = tuple(
                _text_of(n) for n in self.children(part, "NamespaceSupported")
            )
        result: dict[str, Packaging] = {}
        for packaging in self.children(root, "Packaging"):
            package_id = self.req_attr(packaging, "id")
            # id -> (mimetype, constituent idrefs) for this package's Encapsulations/Composites.
            nodes: dict[str, tuple[str, list[str]]] = {}
            composites: list[str] = []
            for composite_list in self.children(packaging, "CompositeList"):
                for node in composite_list:
                    if not isinstance(node.tag, str):
                        continue
                    node_id = self.req_attr(node, "id")
                    refs = [self.req_attr(c, "idref") for c in self.children(node, "Constituent")]
                    nodes[node_id] = (self.req_attr(node, "mimetype"), refs)
                    if etree.QName(node).localname == "Composite":
                        composites.append(node_id)
            result[package_id] = self.payload_of(package_id, composites, nodes, simple_parts)
        return result

    def payload_of(
        self,
        package_id: str,
        composites: list[str],
        nodes: Mapping[str, tuple[str, list[str]]],
        simple_parts: Mapping[str, tuple[str, ...]],
    ) -> Packaging:
        """Follow the package's outermost Composite to its non-header part."""
        # The outermost Composite is the one no other node refers to.
        referenced = {ref for _, refs in nodes.values() for ref in refs}
        outer = [c for c in composites if c not in referenced]
        if not outer:
            return Packaging(package_id, (), ())
        for ref in nodes[outer[0]][1]:
            layers: list[str] = []
            seen: set[str] = set()
            while ref in nodes and ref not in seen:
                seen.add(ref)
                mimetype, refs = nodes[ref]
                layers.append(mimetype)
                if len(refs) != 1:
                    break
                ref = refs[0]
            if ref in nodes:
                continue  # a nested multipart: not a layered single payload
            if ref not in simple_parts:
                raise self.fail(f"Packaging {package_id!r} refers to unknown part {ref!r}")
            namespaces = simple_parts[ref]
            if not layers and _EBXML_HEADER_NAMESPACES & set(namespaces):
                continue  # the ebXML header part itself
            return Packaging(package_id, tuple(layers), namespaces)
        return Packaging(package_id, (), ())


def _text_of(el: etree._Element) -> str:
    """All text inside ``el`` (comments are stripped at parse), without outer whitespace."""
    return "".join(t for t in el.itertext() if isinstance(t, str)).strip()


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else "?"
