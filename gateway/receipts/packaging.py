"""How our AppRec to one partner is packaged, from its CPA and the ``[replies]`` options.

The CPA says it all for the answer's Service/Action (``BehandlerKrav``/``Svarmelding``): our
``CanSend`` binding (the partner's ``CanReceive`` when ours is missing) names the package:

- its payload part's ``NamespaceSupported`` is the AppRec version the partner reads (the real
  NAV CPA's ``NAV_message_apprec_v1p0``: ``http://www.kith.no/xmlstds/apprec/2004-11-21``, 1.0);
- its ``Encapsulation`` layers say gzip and/or CMS enveloped-data (the real file: encrypted only);
- the binding's delivery channel says ``duplicateElimination`` (``always``/``perMessage``: we
  set it, since we resend our AppRecs until acknowledged; ``never``: we do not).

The partner's table in ``[replies]`` may force the carrier (``msghead``) and the version. Without
a CPA the AppRec goes bare, version 1.0, neither compressed nor encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from gateway.claims.message_types import MessageType
from gateway.errors import CertificateInvalid
from gateway.logs import get_logger
from gateway.partners.checks import Agreement
from gateway.partners.cpa import ActionBinding, DeliveryChannel
from gateway.receipts.apprec import AppRecVersion
from gateway.receipts.options import Carrier, PartnerReplies
from gateway.security.certificates import Purpose, RevocationCheck, check_certificate

__all__ = ["ReplyPackaging", "reply_packaging"]

log = get_logger("receipts.packaging")


@dataclass(frozen=True, slots=True)
class ReplyPackaging:
    """How the AppRec to one partner is written and wrapped."""

    carrier: Carrier = "bare"
    version: AppRecVersion = AppRecVersion.V1_0
    compress: bool = False
    encrypt_to: x509.Certificate | None = None
    """The partner's encryption certificate: the payload is CMS-enveloped to it."""
    duplicate_elimination: bool = False


def reply_packaging(
    agreement: Agreement | None,
    message_type: MessageType,
    options: PartnerReplies,
    *,
    at: datetime,
    encrypt_replies: bool,
    revocation: RevocationCheck | None = None,
) -> ReplyPackaging:
    """The packaging of our AppRec under ``agreement`` (None: no CPA)."""
    if agreement is None:
        return ReplyPackaging(carrier=options.carrier, version=options.apprec_version or _V1_0)
    service, action = message_type.reply_service, message_type.reply_action
    ours = agreement.us.can_send(service, action)
    theirs = agreement.partner.can_receive(service, action)
    binding = ours or theirs
    version = options.apprec_version or _declared_version(ours, theirs)
    encrypt_to = None
    if binding is not None and binding.packaging.encrypted and encrypt_replies:
        encrypt_to = _encryption_certificate(agreement, message_type, at, revocation)
    channel = agreement.us.channel_for(ours) if ours is not None else None
    return ReplyPackaging(
        carrier=options.carrier,
        version=version,
        compress=binding is not None and binding.packaging.compressed,
        encrypt_to=encrypt_to,
        duplicate_elimination=_eliminates_duplicates(
            channel, agreement.partner.channel_for(theirs) if theirs is not None else None
        ),
    )


_V1_0 = AppRecVersion.V1_0


def _declared_version(*bindings: ActionBinding | None) -> AppRecVersion:
    """The AppRec version of the first binding whose payload declares an AppRec namespace."""
    for binding in bindings:
        if binding is None:
            continue
        for namespace in binding.packaging.namespaces:
            try:
                return AppRecVersion.of_namespace(namespace)
            except ValueError:
                continue
    return _V1_0


def _eliminates_duplicates(*channels: DeliveryChannel | None) -> bool:
    """``duplicateElimination`` of our sending channel, else the partner's receiving one."""
    for channel in channels:
        if channel is not None:
            return channel.duplicate_elimination in ("always", "perMessage")
    return False


def _encryption_certificate(
    agreement: Agreement,
    message_type: MessageType,
    at: datetime,
    revocation: RevocationCheck | None,
) -> x509.Certificate | None:
    """The partner's certificate to encrypt our reply to, when usable (valid, for encryption,
    not revoked); else None: the reply goes signed but unencrypted."""
    partner = agreement.partner
    certificate = partner.encryption_certificate(message_type.reply_service, at=at)
    problem = "no encryption certificate"
    if certificate is not None:
        try:
            check_certificate(certificate, at, Purpose.ENCRYPTION, revocation=revocation)
            return certificate
        except CertificateInvalid as exc:
            problem = exc.detail
    # Often the very case being answered (an expired certificate pair): the sender must still
    # learn why; an AppRec carries no patient data, so it goes signed but unencrypted rather
    # than not at all (or crashing here).
    log.warning(
        "reply_not_encrypted",
        cpa_id=agreement.cpa.cpa_id,
        partner_her=partner.her_id,
        reason=problem,
    )
    return None
