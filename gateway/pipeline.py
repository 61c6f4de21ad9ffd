"""The conductor: one received message, from raw bytes to committed decision and replies.

The stages run in the order ``Pipeline`` calls them below, named in ``STAGES``; the logic of each
lives in its package (``ebxml/`` unwrap and payload, ``partners/`` addressing and signatures,
``receipts/`` duplicates and answers, ``claims/`` message types, ``rules/``). Values between
them are typed and complete for their phase; ``Understood`` keeps what an interrupted run had
read, to address its answer. A stage stops the run by raising a ``MessageError`` (answered as
``gateway.errors.RECEIPTS`` says) or by ending it early (a duplicate, an incoming signal, a
partner's Ping or StatusRequest).
Whatever happens, the original bytes, what was understood, the decision and the replies are
committed together in ``Pipeline.commit``: all or nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime

from lxml import etree

from gateway.claims.message_types import Claim, document_type
from gateway.claims.model import MsgHead
from gateway.claims.msghead import parse_msghead
from gateway.claims.practitioner import practitioner_id
from gateway.clock import local_naive, utc_now
from gateway.config import IdentityConfig, SecurityConfig
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.model import EbxmlMessage
from gateway.ebxml.payload import Decrypt, extract_payload
from gateway.ebxml.signals import (
    MessageStatus,
    StatusRequest,
    is_ping,
    is_status_request,
    parse_status_request,
    signature_references,
)
from gateway.ebxml.unwrap import BareDocument, Packaged, is_signal, unwrap, whole_sha256
from gateway.errors import ContentError, MessageError, MsgIdReused, SchemaInvalid
from gateway.logs import get_logger
from gateway.outbox.signals import match_signal
from gateway.partners.addressing import check_addressing, check_msghead_parties
from gateway.partners.authentication import (
    msh_request_partner,
    sender_agreement,
    signal_trusted,
    verified_envelope,
    verified_msghead,
)
from gateway.partners.cpa import CpaParty
from gateway.partners.registry import PartnerRegistry
from gateway.practices.live import PracticeSource
from gateway.practices.model import EMPTY_REGISTER
from gateway.practices.senders import Sender, sender_of
from gateway.processing import (
    Decided,
    Duplicate,
    Ending,
    Intake,
    MshRequest,
    Processed,
    Result,
    Signal,
    StageObserver,
    unobserved,
)
from gateway.receipts.answers import Answer, Answering
from gateway.receipts.duplicates import ebxml_duplicate, msghead_duplicate
from gateway.receipts.options import ReplyOptions
from gateway.receipts.signing import ReplySigning
from gateway.receipts.understood import Understood
from gateway.records import Outcome
from gateway.rules.base import ClaimContext
from gateway.rules.codes import shipped_code_list
from gateway.rules.engine import RuleEngine
from gateway.security import cms
from gateway.security.certificates import RevocationCheck
from gateway.security.xmldsig import Signer
from gateway.store import Store
from gateway.store.intake import IntakeRows, intake_rows
from gateway.tariffs.model import EMPTY_BOOK, TariffBook
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

log = get_logger("pipeline")

#: The stages, in the order ``Pipeline`` runs them (a test holds the two together).
STAGES: tuple[str, ...] = (
    "unwrap",
    "read_envelope",
    "check_ebxml_addressing",
    "verify_ebxml_signature",
    # After the CPA and signature checks: only an authenticated sender gets stored replies.
    "check_ebxml_duplicate",
    "extract_payload",
    "parse_payload",
    "verify_msghead_signature",
    "validate",
    "read_msghead",
    "check_msghead_duplicate",
    "check_receiver",
    "read_claim",
    "run_rules",
)


class Pipeline:
    """Processes received messages against one store, schema catalog, signer and rule set."""

    def __init__(
        self,
        *,
        identity: IdentityConfig,
        store: Store,
        catalog: SchemaCatalog,
        signer: Signer,
        engine: RuleEngine,
        max_message_bytes: int,
        clock: Callable[[], datetime] = utc_now,
        tariffs: TariffBook = EMPTY_BOOK,
        practices: PracticeSource = EMPTY_REGISTER,
        partners: PartnerRegistry | None = None,
        decryption_keys: Sequence[cms.DecryptionKey] = (),
        security: SecurityConfig | None = None,
        observe: StageObserver | None = None,
        replies: ReplyOptions | None = None,
        revocation: RevocationCheck | None = None,
        reply_signing: ReplySigning = ReplySigning.AGREED,
    ) -> None:
        # Every rule's code must be in the published code list: a code outside it is never sent.
        shipped_code_list().check(engine.rules)
        self.identity = identity
        #: Entered around every stage run (the daemon counts and times each).
        self.observe: StageObserver = observe or unobserved
        #: The CPA registry; replaced by the daemon on SIGHUP. None: no CPA checks (the
        #: embedded default), so no decryption and no signature checks either.
        self.partners = partners
        self.decryption_keys = tuple(decryption_keys)
        self.security = security or SecurityConfig(
            decryption=(),
            require_signed_msghead=True,
            require_signed_ebxml=False,
            encrypt_replies=True,
            certificate_warn_days=30,
        )
        #: Replaced by the daemon when new tariff data is imported (no restart needed).
        self.tariffs = tariffs
        #: The practice register in force (a ``LiveRegister`` in the daemon: new imports apply
        #: from the next message).
        self.practices = practices
        self.store = store
        self.catalog = catalog
        self.signer = signer
        self.engine = engine
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        #: How answers are written (``[replies]``): code system, per-partner carrier/version.
        self.replies = replies or ReplyOptions()
        #: Whether a partner certificate is revoked (``[revocation]``); None: not checked.
        self.revocation = revocation
        #: Which replies are signed (``gateway.receipts.signing``).
        self.reply_signing = reply_signing

    def handle(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> Result:
        """Process one message and commit it with its replies. Never raises a MessageError."""
        return self.commit(
            self.process(raw, source=source, source_ref=source_ref, source_name=source_name)
        )

    def process(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> Processed:
        """Run the stages and build the answer; the store is only read."""
        intake = Intake(raw, source, source_ref, source_name, self.clock(), whole_sha256(raw))
        known = Understood(intake.received_at, source_ref, source_name)
        try:
            ending = self._run(intake, known)
        except MessageError as error:
            known.remember_msg_id = not isinstance(error, MsgIdReused)
            detail = f"{type(error).__name__}: {error.detail}"
            return Processed(intake, known, self._answering(known).error(error), None, detail)
        return Processed(intake, known, self._answer(ending, known), ending, None)

    def commit(self, processed: Processed) -> Result:
        """The transaction: the intake and all it produced, in one commit."""
        received_id = self.store.intake.commit_rows(self.rows(processed))
        ending = processed.ending
        if isinstance(ending, Signal) and ending.trusted:
            # After the commit, in its own transaction: a crash in between leaves the signal
            # stored but unmatched, so our message is resent and acknowledged again.
            match_signal(self.store, ending.message, received_id, now=processed.intake.received_at)
        return processed.result(received_id)

    def rows(self, processed: Processed) -> IntakeRows:
        """What ``commit`` writes, as plain rows (a worker process makes them for the writer)."""
        head, answer = processed.known.head, processed.answer
        sender = self._sender(head, processed.intake.received_at) if head else None
        return intake_rows(
            processed.received(),
            processed.message(),
            processed.evaluation,
            answer.replies,
            practitioner_id=practitioner_id(head) if head else "",
            practitioner_type=sender.practitioner_type if sender else None,
        )

    # --- the stages, in order -------------------------------------------------------------------

    def _run(self, intake: Intake, known: Understood) -> Ending:
        with self.observe("unwrap"):
            unwrapped = known.unwrapped = unwrap(intake.raw, max_bytes=self.max_message_bytes)
        if isinstance(unwrapped, BareDocument):
            return self._read(unwrapped.payload, known)
        opened = self._open(unwrapped, known)
        return self._read(opened, known) if isinstance(opened, bytes) else opened

    def _open(self, packaged: Packaged, known: Understood) -> bytes | Ending:
        """The ebXML message: envelope, addressing, signature, duplicate; its payload."""
        at, package, us = known.received_at, packaged.package, self.identity.her_id
        signed = self.security.require_signed_ebxml
        with self.observe("read_envelope") as stage:
            message = known.message = parse_envelope(package.envelope.body)
            if is_signal(message):
                # Signals for our own outbound messages: recorded, then matched after the commit.
                header = message.header
                log.info("signal_received", action=header.action, ref_to=header.ref_to_message_id)
                stage.finished()
                trusted = signal_trusted(
                    package, message, self.partners, us, at, signed, revocation=self.revocation
                )
                return Signal(message, trusted)
            if self.partners is not None and _is_msh_request(message):
                request = self._msh_request(packaged, message, known)
                stage.finished()
                return request
        with self.observe("check_ebxml_addressing"):
            addressed = check_addressing(message.header, self.partners, us, at=at)
            known.message_type, known.agreement = addressed.message_type, addressed.agreement
        agreement = addressed.agreement
        with self.observe("verify_ebxml_signature"):
            verified = verified_envelope(
                package, message, agreement, at, signed, revocation=self.revocation
            )
            message = known.message = verified.message
            if verified.checked and message.ack_requested and message.ack_signed:
                # Non-repudiation of receipt: the signed ack carries what was signed.
                known.signature_references = signature_references(package.envelope.body)
        with self.observe("check_ebxml_duplicate") as stage:
            prior = ebxml_duplicate(self.store.intake, message.header, packaged.content_sha256)
            if prior is not None:
                stage.finished()
                return Duplicate(prior, new_message=False)
        with self.observe("extract_payload"):
            return extract_payload(
                package,
                message,
                decrypt=self._decrypt(),
                must_be_encrypted=agreement is not None and agreement.payload_encrypted,
                max_bytes=self.max_message_bytes,
            )

    def _msh_request(
        self, packaged: Packaged, message: EbxmlMessage, known: Understood
    ) -> MshRequest:
        """A partner's Ping or StatusRequest, from the other party of a CPA in force and signed
        as the CPA's default channel says (else an ebXML error, answered with a MessageError)."""
        assert self.partners is not None  # only asked with partners configured
        partner, envelope = msh_request_partner(
            packaged.package,
            message,
            self.partners,
            self.identity.her_id,
            known.received_at,
            self.security.require_signed_ebxml,
            revocation=self.revocation,
        )
        known.partner = partner
        if is_ping(message.header):
            return MshRequest(message.header)
        request = parse_status_request(envelope)
        status, received_at = self._status_of(request, partner)
        return MshRequest(message.header, request, status, received_at)

    def _status_of(
        self, request: StatusRequest, partner: CpaParty
    ) -> tuple[MessageStatus, datetime | None]:
        """The status of the message a StatusRequest names: we never received it (or answered
        it with a MessageError: not received), it is not the requester's, it is received but
        not answered (an operator holds it), or received and answered."""
        found = self.store.intake.status_of(request.header.cpa_id, request.ref_to_message_id)
        if found is None:
            return MessageStatus.NOT_RECOGNIZED, None
        if found.from_her != partner.her_id or found.cpa_id != request.header.cpa_id:
            return MessageStatus.UNAUTHORIZED, None
        if found.outcome is Outcome.FAILED:
            return MessageStatus.RECEIVED, found.received_at
        return MessageStatus.PROCESSED, found.received_at

    def _read(self, payload: bytes, known: Understood) -> Ending:
        """The MsgHead document: parse, signature, schema, ids, parties, claim, rules."""
        with self.observe("parse_payload"):
            payload_sha256 = known.payload_sha256 = _sha256(payload)
            root = known.document = parse_xml(payload, max_bytes=self.max_message_bytes)
        with self.observe("verify_msghead_signature"):
            at, signed = known.received_at, self.security.require_signed_msghead
            if known.agreement is None and self.partners is not None:
                # No ebXML around it (a file in the spool): the MsgHead sender's own CPA, or
                # UnknownSender. With partners, no claim goes unauthenticated.
                known.agreement = sender_agreement(root, self.partners, self.identity.her_id, at)
            root = verified_msghead(root, known.agreement, at, signed, revocation=self.revocation)
        try:
            with self.observe("validate"):
                message_type = known.message_type = document_type(root, known.message_type)
                self.catalog.validate(root).raise_if_invalid()
        except SchemaInvalid:
            # Invalid, yet its MsgHead may be readable: its ids address the AppRec and are
            # remembered, and a message we know is answered as the first time (or with E10).
            head = known.head = _readable_head(root)
            if head is not None and (again := self._known(head, payload_sha256)) is not None:
                return again
            raise
        with self.observe("read_msghead"):
            document = parse_msghead(root)
            known.head = document.head
        if (again := self._known(document.head, payload_sha256)) is not None:
            return again
        with self.observe("check_receiver"):
            check_msghead_parties(document.head, known.agreement, self.identity.her_id)
        with self.observe("read_claim"):
            claim = Claim(document, message_type.read(document.content), message_type)
        with self.observe("run_rules"):
            evaluation = self.engine.evaluate(self._context(claim, known.received_at))
        return Decided(claim, evaluation)

    def _known(self, head: MsgHead, payload_sha256: str) -> Duplicate | None:
        """The MsgHead duplicate check: the same claim processed before, in any ebXML message."""
        with self.observe("check_msghead_duplicate") as stage:
            prior = msghead_duplicate(self.store.intake, head, payload_sha256)
            if prior is None:
                return None
            stage.finished()
            return Duplicate(prior, new_message=True)

    def _decrypt(self) -> Decrypt | None:
        keys, limit = self.decryption_keys, self.max_message_bytes
        return (lambda blob: cms.decrypt(blob, keys, max_bytes=limit)) if keys else None

    def _context(self, claim: Claim, received_at: datetime) -> ClaimContext:
        head = claim.document.head
        register = self.practices.current()
        sender = sender_of(register, head, local_naive(received_at).date())
        return ClaimContext(
            head=head,
            krav=claim.krav,
            sender_her=head.sender.her_id or "",
            received_at=local_naive(received_at),
            history=self.store.history,
            tariffs=self.tariffs,
            practitioner=sender.practitioner_type,
            practitioner_id=practitioner_id(head),
            practices=register,
            practice=sender.practice,
        )

    def _sender(self, head: MsgHead, received_at: datetime) -> Sender:
        return sender_of(self.practices.current(), head, local_naive(received_at).date())

    # --- answers --------------------------------------------------------------------------------

    def _answering(self, known: Understood) -> Answering:
        return Answering.to(
            known,
            identity=self.identity,
            signer=self.signer,
            encrypt_replies=self.security.encrypt_replies,
            options=self.replies,
            revocation=self.revocation,
            signing=self.reply_signing,
            partners=self.partners is not None,
        )

    def _answer(self, ending: Ending, known: Understood) -> Answer:
        if isinstance(ending, Signal):
            return Answer(Outcome.SIGNAL)
        answering = self._answering(known)
        if isinstance(ending, MshRequest):
            if ending.status_request is None:
                return answering.pong(ending.header)
            return answering.status(ending.status_request, ending.status, ending.received_at)
        if isinstance(ending, Duplicate):
            stored = self.store.intake.replies_for(ending.prior_id)
            return answering.again(ending.prior_id, stored, new_message=ending.new_message)
        return answering.decision(ending.evaluation)


def _is_msh_request(message: EbxmlMessage) -> bool:
    return is_ping(message.header) or is_status_request(message.header)


def _readable_head(root: etree._Element) -> MsgHead | None:
    try:
        return parse_msghead(root).head
    except ContentError:
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = ["STAGES", "Pipeline", "Processed", "Result"]
