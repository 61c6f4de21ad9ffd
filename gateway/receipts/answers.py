"""What a received message is answered with: its outcome and the replies that say so.

- A claim that went through the rules: an AppRec with status 1, 2 or 3 (one ``Error`` per
  rejected bill, or the message-level findings), after an ebXML ``Acknowledgment`` if asked.
- A ``MessageError`` raised by a stage: what ``gateway.errors.RECEIPTS`` says, an ebXML
  MessageError (the message was not received) or a rejecting AppRec.
- A message we know: the replies it got the first time (``gateway.receipts.duplicates``).

Replies go where ``Understood.reply_address`` says, encrypted to the partner when its CPA says
so and its certificate allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from gateway.claims.message_types import MESSAGE_TYPES, MessageType
from gateway.config import IdentityConfig
from gateway.ebxml.envelope import peek_message_id
from gateway.errors import CertificateInvalid, MessageError, ReplyChannel, receipt_for
from gateway.logs import get_logger
from gateway.partners.checks import Agreement
from gateway.receipts.apprec import AppRecError, AppRecStatus
from gateway.receipts.duplicates import replies_again
from gateway.receipts.replies import Replier
from gateway.receipts.understood import Understood
from gateway.records import Outcome, ReplyRecord, StoredReply
from gateway.rules.base import Severity
from gateway.rules.engine import Evaluation
from gateway.security.certificates import Purpose, check_certificate
from gateway.security.xmldsig import Signer

__all__ = ["Answer", "Answering"]

log = get_logger("receipts.answers")

_OUTCOMES = {
    AppRecStatus.OK: Outcome.ACCEPTED,
    AppRecStatus.AVVIST: Outcome.REJECTED,
    AppRecStatus.OK_FEIL_I_DELMELDING: Outcome.PARTIALLY_ACCEPTED,
}


@dataclass(frozen=True, slots=True)
class Answer:
    """How one received message ends: its outcome and every reply it gets."""

    outcome: Outcome
    replies: tuple[ReplyRecord, ...] = ()
    apprec_status: int | None = None
    duplicate_of: int | None = None


@dataclass(frozen=True, slots=True)
class Answering:
    """Builds the answer to one received message, from what is known of it."""

    known: Understood
    replier: Replier

    @classmethod
    def to(
        cls,
        known: Understood,
        *,
        identity: IdentityConfig,
        signer: Signer,
        encrypt_replies: bool,
    ) -> Answering:
        message_type = known.message_type or MESSAGE_TYPES[0]
        encrypt_to = None
        if known.agreement is not None and encrypt_replies:
            encrypt_to = _encryption_certificate(known.agreement, message_type, known)
        return cls(
            known,
            Replier(
                identity=identity,
                signer=signer,
                now=known.received_at,
                source_name=known.source_name,
                mail_to=known.reply_address(),
                reply_service=message_type.reply_service,
                reply_action=message_type.reply_action,
                sign_envelopes=True,
                encrypt_to=encrypt_to,
            ),
        )

    def decision(self, evaluation: Evaluation) -> Answer:
        """Answer a claim that went through the rules."""
        errors: list[AppRecError] = []
        if evaluation.message_rejected:
            status = AppRecStatus.AVVIST
            errors = [
                AppRecError(code=f.code, text=f.text)
                for f in evaluation.message_findings
                if f.severity is Severity.REJECT_MESSAGE
            ]
        else:
            for bill in evaluation.rejected:
                refusing = [f for f in bill.findings if f.severity is not Severity.WARNING]
                errors.append(
                    AppRecError(
                        code=refusing[0].code,
                        text=" ".join(f.text for f in refusing),
                        ot=bill.bill.regning_nr,
                    )
                )
            if not evaluation.rejected:
                status = AppRecStatus.OK
            elif not evaluation.approved:
                status = AppRecStatus.AVVIST
            else:
                status = AppRecStatus.OK_FEIL_I_DELMELDING
        log.info(
            "claim_decided",
            source_ref=self.known.source_ref,
            apprec_status=int(status),
            bills=len(evaluation.bills),
            approved=len(evaluation.approved),
            rejected=len(evaluation.rejected),
        )
        return Answer(_OUTCOMES[status], self._apprec(status, errors), apprec_status=int(status))

    def error(self, error: MessageError) -> Answer:
        """Answer a message a stage refused, as ``RECEIPTS`` says."""
        receipt = receipt_for(error)
        known = self.known
        log.info(
            "message_rejected",
            source_ref=known.source_ref,
            error=type(error).__name__,
            code=receipt.code,
            detail=error.detail,
        )
        if receipt.channel is ReplyChannel.EBXML_MESSAGE_ERROR:
            peeked = None
            if known.message is None and known.packaged is not None:
                peeked = peek_message_id(known.packaged.package.envelope.body)
            reply = self.replier.message_error(
                known.message.header if known.message else None,
                receipt.code,
                f"{receipt.text}: {error.detail}",
                error.location,
                ref_to_message_id=peeked,
            )
            return Answer(Outcome.EBXML_ERROR, (reply,))
        # An application-level rejection: the ebXML message itself arrived fine.
        text = error.detail if not error.location else f"{error.detail} ({error.location})"
        rejection = AppRecError(
            code=receipt.code, text=receipt.text, code_system=receipt.code_system, ot=text[:1000]
        )
        status = AppRecStatus.AVVIST
        return Answer(Outcome.REJECTED, self._apprec(status, [rejection]), int(status))

    def again(self, prior_id: int, stored: Iterable[StoredReply], *, new_message: bool) -> Answer:
        """Answer a message we processed before with the replies it got then. ``new_message``:
        the same claim in a new ebXML message, acknowledged anew (not with the old ack)."""
        log.info("duplicate_answered_again", source_ref=self.known.source_ref, first=prior_id)
        replies = self._acknowledgment() if new_message else []
        replies += replies_again(
            stored, without_acknowledgments=new_message, file_name=self.replier.file_name
        )
        return Answer(Outcome.DUPLICATE, tuple(replies), duplicate_of=prior_id)

    def _apprec(
        self, status: AppRecStatus, errors: list[AppRecError]
    ) -> tuple[ReplyRecord, ...]:
        acknowledgment = self._acknowledgment()
        apprec = self.replier.apprec(
            incoming=self.known.message,
            receiver=self.known.claim_sender(),
            original=self.known.original_ref(),
            status=status,
            errors=errors,
        )
        return (*acknowledgment, apprec)

    def _acknowledgment(self) -> list[ReplyRecord]:
        message = self.known.message
        if message is not None and message.ack_requested:
            return [self.replier.acknowledgment(message)]
        return []


def _encryption_certificate(
    agreement: Agreement, message_type: MessageType, known: Understood
) -> x509.Certificate | None:
    """The partner's certificate to encrypt our reply to, when its CPA wants replies encrypted
    and the certificate is usable; else None (the reply goes signed but unencrypted)."""
    partner = agreement.partner
    binding = partner.can_receive(message_type.reply_service, message_type.reply_action)
    if binding is None or not binding.packaging.encrypted:
        return None
    certificate = partner.encryption_certificate(message_type.reply_service)
    problem = "no encryption certificate"
    if certificate is not None:
        try:
            check_certificate(certificate, known.received_at, Purpose.ENCRYPTION)
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
