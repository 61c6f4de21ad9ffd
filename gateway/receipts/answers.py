"""What a received message is answered with: its outcome and the replies that say so.

- A claim that went through the rules: an AppRec with status 1, 2 or 3, one ``Error`` per
  refusing finding (``gateway.receipts.rule_errors``: per-bill codes from the shipped code list
  with ``OT`` = RegningNr, message-level rejections as KITH 8221 codes), after an ebXML
  ``Acknowledgment`` if asked (a signed one carrying the claim's ``ds:Reference`` copies).
- A ``MessageError`` raised by a stage: what ``gateway.errors.RECEIPTS`` says, an ebXML
  MessageError (the message was not received) or a rejecting AppRec.
- A message we know: the replies it got the first time (``gateway.receipts.duplicates``).
- A Ping or StatusRequest from a partner: a Pong or StatusResponse.

Replies go where ``Understood.reply_address`` says, packaged as the partner's CPA and the
``[replies]`` options say (``gateway.receipts.packaging``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.claims.message_types import MESSAGE_TYPES
from gateway.config import IdentityConfig
from gateway.ebxml.envelope import peek_message_id
from gateway.ebxml.model import MessageHeader
from gateway.ebxml.signals import MessageStatus, StatusRequest
from gateway.errors import MessageError, ReplyChannel, receipt_for
from gateway.logs import get_logger
from gateway.receipts.apprec import AppRecError, AppRecStatus
from gateway.receipts.duplicates import replies_again
from gateway.receipts.options import ReplyOptions
from gateway.receipts.packaging import reply_packaging
from gateway.receipts.replies import Replier
from gateway.receipts.rule_errors import errors_from_evaluation
from gateway.receipts.signing import ReplySigning, required_signatures
from gateway.receipts.understood import Understood
from gateway.records import Outcome, ReplyRecord, StoredReply
from gateway.rules.engine import Evaluation
from gateway.security.certificates import RevocationCheck
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
    options: ReplyOptions = field(default_factory=ReplyOptions)

    @classmethod
    def to(
        cls,
        known: Understood,
        *,
        identity: IdentityConfig,
        signer: Signer,
        encrypt_replies: bool,
        options: ReplyOptions | None = None,
        revocation: RevocationCheck | None = None,
        signing: ReplySigning = ReplySigning.AGREED,
        partners: bool = False,
    ) -> Answering:
        options = options or ReplyOptions()
        message_type = known.message_type or MESSAGE_TYPES[0]
        packaging = reply_packaging(
            known.agreement,
            message_type,
            options.for_partner(known.partner_her()),
            at=known.received_at,
            encrypt_replies=encrypt_replies,
            revocation=revocation,
        )
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
                signatures=required_signatures(
                    signing,
                    known.agreement,
                    known.message,
                    partners=partners,
                    reply_service=message_type.reply_service,
                    reply_action=message_type.reply_action,
                ),
                packaging=packaging,
            ),
            options,
        )

    def decision(self, evaluation: Evaluation) -> Answer:
        """Answer a claim that went through the rules: one ``Error`` per refusing finding."""
        errors = list(
            errors_from_evaluation(
                evaluation,
                code_system=self.options.rule_code_system,
                explain=self.options.explain,
            )
        )
        if evaluation.message_rejected:
            status = AppRecStatus.AVVIST
        elif not evaluation.rejected:
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
            errors=len(errors),
        )
        return Answer(_OUTCOMES[status], self._apprec(status, errors), apprec_status=int(status))

    def pong(self, ping: MessageHeader) -> Answer:
        """Answer a partner's Ping with a Pong."""
        log.info("ping_answered", source_ref=self.known.source_ref, ref_to=ping.message_id)
        return Answer(Outcome.SIGNAL, (self.replier.pong(ping),))

    def status(
        self, request: StatusRequest, status: MessageStatus, received_at: datetime | None
    ) -> Answer:
        """Answer a partner's StatusRequest with the status of the message it names."""
        log.info(
            "status_request_answered",
            source_ref=self.known.source_ref,
            asked=request.ref_to_message_id,
            status=status.value,
        )
        reply = self.replier.status_response(request, status, received_at)
        return Answer(Outcome.SIGNAL, (reply,))

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

    def _apprec(self, status: AppRecStatus, errors: list[AppRecError]) -> tuple[ReplyRecord, ...]:
        acknowledgment = self._acknowledgment()
        apprec = self.replier.apprec(
            incoming=self.known.message,
            receiver=self.known.claim_sender(),
            original=self.known.original_ref(),
            status=status,
            errors=errors,
        )
        return (*acknowledgment, *apprec)

    def _acknowledgment(self) -> list[ReplyRecord]:
        message = self.known.message
        if message is not None and message.ack_requested:
            references = self.known.signature_references if message.ack_signed else ()
            return [self.replier.acknowledgment(message, references=references)]
        return []
