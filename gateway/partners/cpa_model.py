"""The values a parsed CPA is made of: frozen, with the lookups gateway needs on them.

``gateway.partners.cpa`` documents what is read from a CPA file and how; ``cpa_reader`` does
the reading. Certificates are kept per ``certId`` as *all* end-entity certificates of the
``Certificate``'s ``ds:KeyInfo``, in file order: during a partner's certificate rollover the CPA
(or a rollover file in the partners directory, see ``gateway.partners.registry``) holds the old
and the new one, and a signature by either verifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from cryptography import x509

from gateway.ebxml.model import PartyId
from gateway.errors import ConfigurationError

__all__ = [
    "CPPA_NS",
    "ActionBinding",
    "CollaborationRole",
    "Cpa",
    "CpaInvalid",
    "CpaParty",
    "DeliveryChannel",
    "ExchangeBinding",
    "Packaging",
    "PerMessage",
    "ReliableMessaging",
    "RetryPolicy",
    "mail_address_of",
    "preferred_certificate",
]

CPPA_NS: Final = "http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"
_GZIP_TYPES: Final = frozenset({"application/x-gzip", "application/gzip"})
_CMS_TYPES: Final = frozenset({"application/pkcs7-mime", "application/pkcs7-mime-enveloped"})

PerMessage = Literal["always", "never", "perMessage"]


class CpaInvalid(ConfigurationError):
    """A CPA file cannot be used; ``str()`` names the file and the problem."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Packaging:
    """How a payload is wrapped, outermost layer first, e.g. ``("application/pkcs7-mime",
    "application/x-gzip")`` for "gzip, then encrypt". Empty: the payload goes as it is."""

    package_id: str
    layers: tuple[str, ...]
    namespaces: tuple[str, ...]
    """XML namespaces the payload part declares (``NamespaceSupported``)."""

    @property
    def compressed(self) -> bool:
        """True if the payload is gzipped (at any layer)."""
        return any(layer in _GZIP_TYPES for layer in self.layers)

    @property
    def encrypted(self) -> bool:
        """True if the payload is CMS-enveloped (``application/pkcs7-mime``)."""
        return any(layer in _CMS_TYPES for layer in self.layers)


@dataclass(frozen=True, slots=True)
class ActionBinding:
    """One ``CanSend`` or ``CanReceive``: a party may send/receive ``action`` of ``service``."""

    binding_id: str
    direction: Literal["send", "receive"]
    service: str
    service_type: str | None
    action: str
    role: str
    """The ``Role/@name`` of the CollaborationRole this binding belongs to."""
    channel_ids: tuple[str, ...]
    packaging: Packaging


@dataclass(frozen=True, slots=True)
class CollaborationRole:
    """A ``CollaborationRole``: one process, one role, one service and its action bindings."""

    process: str
    role: str
    service: str
    service_type: str | None
    application_cert_ids: tuple[str, ...]
    bindings: tuple[ActionBinding, ...]


@dataclass(frozen=True, slots=True)
class ReliableMessaging:
    """``ReliableMessaging``: resend up to ``retries`` times, ``retry_interval`` apart."""

    retries: int | None
    retry_interval: timedelta | None
    message_order: str


@dataclass(frozen=True, slots=True)
class ExchangeBinding:
    """An ``ebXMLSenderBinding`` or ``ebXMLReceiverBinding`` of a ``DocExchange``."""

    reliable_messaging: ReliableMessaging | None
    persist_duration: timedelta | None
    signing_cert_id: str | None
    """``SenderNonRepudiation/SigningCertificateRef`` (sender bindings only)."""
    hash_function: str | None
    signature_algorithms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliveryChannel:
    """A ``DeliveryChannel`` with its ``Transport`` and ``DocExchange`` resolved."""

    channel_id: str
    transport_protocol: str | None
    """The receiving side's ``TransportProtocol`` (``SMTP``, ``HTTP``)."""
    endpoint: str | None
    """The first receiver ``Endpoint/@uri`` (``allPurpose`` preferred)."""
    sync_reply_mode: str
    ack_requested: PerMessage
    ack_signature_requested: PerMessage
    duplicate_elimination: PerMessage
    sender: ExchangeBinding | None
    receiver: ExchangeBinding | None

    @property
    def mail_address(self) -> str | None:
        """The address of a ``mailto:`` endpoint, else ``None``."""
        return mail_address_of(self.endpoint) if self.endpoint else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to resend an unacknowledged message: ``retries`` more times, ``interval`` apart,
    and not after ``persist_duration`` from the first send (if the CPA gives one)."""

    retries: int
    interval: timedelta
    persist_duration: timedelta | None


@dataclass(frozen=True, slots=True)
class CpaParty:
    """One ``PartyInfo`` of a CPA."""

    name: str
    party_ids: tuple[PartyId, ...]
    roles: tuple[CollaborationRole, ...]
    certificates: Mapping[str, tuple[x509.Certificate, ...]]
    """Per ``certId``: the end-entity certificates of its ``ds:KeyInfo``, in file order."""
    channels: Mapping[str, DeliveryChannel]
    default_channel_id: str
    rollover_certificates: tuple[x509.Certificate, ...] = ()
    """Further signing certificates the operator added for this party (a rollover file in the
    partners directory), accepted beside the CPA's own."""

    @property
    def her_id(self) -> str | None:
        """The party's HER id (``PartyId type="HER"``)."""
        return self.id_of("HER")

    @property
    def enh_id(self) -> str | None:
        """The party's organisation number (``PartyId type="ENH"``)."""
        return self.id_of("ENH")

    def id_of(self, type_: str) -> str | None:
        """The first PartyId of the given type, or ``None``."""
        for party_id in self.party_ids:
            if party_id.type == type_:
                return party_id.value
        return None

    def has_party_id(self, party_id: PartyId) -> bool:
        """True if ``party_id`` (value and type) is one of this party's ids."""
        return party_id in self.party_ids

    @property
    def role_names(self) -> frozenset[str]:
        """Every role this party plays in the CPA."""
        return frozenset(role.role for role in self.roles)

    def bindings(self, direction: Literal["send", "receive"]) -> Iterable[ActionBinding]:
        """Every CanSend (``"send"``) or CanReceive (``"receive"``) binding, in file order."""
        for role in self.roles:
            for binding in role.bindings:
                if binding.direction == direction:
                    yield binding

    def can_send(self, service: str, action: str) -> ActionBinding | None:
        """The CanSend binding of ``service``/``action``, or ``None``."""
        return _find(self.bindings("send"), service, action)

    def can_receive(self, service: str, action: str) -> ActionBinding | None:
        """The CanReceive binding of ``service``/``action``, or ``None``."""
        return _find(self.bindings("receive"), service, action)

    def offers_service(self, service: str) -> bool:
        """True if any of the party's roles has a ServiceBinding for ``service``."""
        return any(role.service == service for role in self.roles)

    @property
    def default_channel(self) -> DeliveryChannel:
        """The channel of MSH signals (``defaultMshChannelId``)."""
        return self.channels[self.default_channel_id]

    def channel_for(self, binding: ActionBinding | None) -> DeliveryChannel:
        """The first channel of ``binding``, or the default MSH channel without one."""
        if binding is not None and binding.channel_ids:
            return self.channels[binding.channel_ids[0]]
        return self.default_channel

    def encryption_certificates(self, service: str | None = None) -> tuple[x509.Certificate, ...]:
        """Every certificate to encrypt payloads to this party with (several during a rollover):
        the ``ApplicationCertificateRef`` of the role bound to ``service`` (any role without
        one)."""
        roles = [r for r in self.roles if service is None or r.service == service]
        for role in roles or self.roles:
            for cert_id in role.application_cert_ids:
                return self.certificates[cert_id]
        return ()

    def encryption_certificate(
        self, service: str | None = None, *, at: datetime | None = None
    ) -> x509.Certificate | None:
        """The certificate to encrypt to: of ``encryption_certificates``, the newest one valid
        at ``at`` (the first in file order without ``at``, or if none is valid then)."""
        return preferred_certificate(self.encryption_certificates(service), at)

    def signing_certificates(
        self, binding: ActionBinding | None = None
    ) -> tuple[x509.Certificate, ...]:
        """Every certificate this party may sign with on ``binding``'s channel (default channel
        without a binding): those of ``SenderNonRepudiation/SigningCertificateRef``, then the
        operator's ``rollover_certificates``. A signature by any of them verifies."""
        sender = self.channel_for(binding).sender
        if sender is None or sender.signing_cert_id is None:
            return ()
        referenced = self.certificates[sender.signing_cert_id]
        return referenced + tuple(c for c in self.rollover_certificates if c not in referenced)

    def signing_certificate(self, binding: ActionBinding | None = None) -> x509.Certificate | None:
        """The first of ``signing_certificates`` (the one the CPA names first), or ``None``."""
        candidates = self.signing_certificates(binding)
        return candidates[0] if candidates else None

    @property
    def all_certificates(self) -> tuple[x509.Certificate, ...]:
        """Every certificate of this party, each once: for revocation checks and health."""
        seen: dict[x509.Certificate, None] = {}
        for group in (*self.certificates.values(), self.rollover_certificates):
            seen.update(dict.fromkeys(group))
        return tuple(seen)


def preferred_certificate(
    candidates: tuple[x509.Certificate, ...], at: datetime | None
) -> x509.Certificate | None:
    """Of ``candidates``, the newest valid at ``at``; the first if ``at`` is ``None`` or none
    is valid then (its check then says why); ``None`` for no candidates."""
    if not candidates:
        return None
    if at is not None:
        valid = [c for c in candidates if c.not_valid_before_utc <= at <= c.not_valid_after_utc]
        if valid:
            return max(valid, key=lambda c: c.not_valid_before_utc)
    return candidates[0]


@dataclass(frozen=True, slots=True)
class Cpa:
    """A parsed CPA. ``parties`` are in file order."""

    cpa_id: str
    version: str
    status: str
    start: datetime
    end: datetime
    parties: tuple[CpaParty, CpaParty]
    source: str

    def in_force(self, at: datetime) -> bool:
        """True if ``at`` (timezone-aware) lies within Start..End, both inclusive."""
        return self.start <= at <= self.end

    def party_by_her(self, her_id: str) -> CpaParty | None:
        """The party with HER id ``her_id``, or ``None``."""
        for party in self.parties:
            if party.her_id == her_id:
                return party
        return None

    def other(self, party: CpaParty) -> CpaParty:
        """The party that is not ``party``."""
        first, second = self.parties
        return second if party is first else first


def _find(bindings: Iterable[ActionBinding], service: str, action: str) -> ActionBinding | None:
    for binding in bindings:
        if binding.service == service and binding.action == action:
            return binding
    return None


def mail_address_of(uri: str) -> str | None:
    """The address of a ``mailto:`` URI (``mailto:a@b``, also NAV's ``mailto://a@b``)."""
    if not uri.lower().startswith("mailto:"):
        return None
    address = uri[len("mailto:") :].lstrip("/").split("?", 1)[0].strip()
    local, at, domain = address.partition("@")
    return address if local and at and domain else None
