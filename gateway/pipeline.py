"""One received message, from raw bytes to committed decision and replies.

The stages run in the order of ``STAGES``; each reads and fills one ``Work`` value and may stop
the run by raising a ``MessageError`` (answered as ``gateway.errors.RECEIPTS`` says) or by
marking the work finished (a duplicate, an incoming signal). Whatever happens, the original
bytes, what was understood of the message, the decision and the replies are committed together
in ``Pipeline.handle``: all or nothing.

Unwrap, validation and rules are pure; only the store is touched here, and only through
``Store`` (lookups during the stages, one commit at the end).
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import re
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from gateway.claims.bkm import parse_behandlerkrav
from gateway.claims.model import BehandlerKrav, Code, Ident, MsgHead, Organisation
from gateway.claims.msghead import MsgHeadDocument, parse_msghead
from gateway.claims.practitioner import practitioner_id, practitioner_type
from gateway.clock import local_naive, utc_now
from gateway.config import IdentityConfig, SecurityConfig
from gateway.ebxml import mime
from gateway.ebxml.envelope import EbxmlMessage, parse_envelope, peek_message_id
from gateway.ebxml.namespaces import BKM_NS, MSGHEAD_NS
from gateway.errors import (
    CertificateInvalid,
    ContentError,
    EbxmlError,
    FeatureNotSupported,
    HeaderInconsistent,
    HeaderValueNotRecognized,
    MessageError,
    MimeProblem,
    MsgIdReused,
    NotXml,
    ReplyChannel,
    SchemaInvalid,
    SecurityFailure,
    UnknownReceiver,
    UnsupportedMessageType,
    receipt_for,
)
from gateway.logs import get_logger
from gateway.outbox.signals import match_signal
from gateway.partners.checks import Agreement, check_header
from gateway.partners.registry import PartnerRegistry
from gateway.receipts.apprec import AppRecError, AppRecStatus
from gateway.receipts.replies import REPLY_ACTION, OriginalRef, Replier
from gateway.receipts.signing import Signer
from gateway.records import MessageRecord, Outcome, ReceivedRecord, ReplyRecord
from gateway.rules.base import ClaimContext, Severity
from gateway.rules.engine import Evaluation, RuleEngine
from gateway.security import cms
from gateway.security.certificates import Purpose, check_certificate
from gateway.security.signatures import verify_ebxml_envelope, verify_msghead
from gateway.store.sqlite import Store
from gateway.tariffs.model import EMPTY_BOOK, TariffBook
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.safe_xml import parse_xml

log = get_logger("pipeline")

#: The ebXML service and action a claim message must carry.
CLAIM_SERVICE = "BehandlerKrav"
CLAIM_ACTION = "OppgjorsMelding"
_MAIL_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_CONTENT_PATH = f"{{{MSGHEAD_NS}}}Document/{{{MSGHEAD_NS}}}RefDoc/{{{MSGHEAD_NS}}}Content/*"
_SIGNAL_ACTIONS = frozenset({"Acknowledgment", "MessageError", "StatusResponse", "Pong"})


@dataclass(slots=True)
class Work:
    """What is known about one message so far; filled in stage by stage."""

    raw: bytes
    source: str
    source_ref: str
    source_name: str
    received_at: datetime  # UTC
    sha256: str
    mail_from: str | None = None
    package: mime.MimePackage | None = None
    ebxml: EbxmlMessage | None = None
    agreement: Agreement | None = None  # the sender's CPA, when partners are configured
    signal_trusted: bool = False  # an incoming signal from the CPA's partner, signed by it
    content_sha256: str | None = None
    payload_sha256: str | None = None
    payload: bytes | None = None
    root: etree._Element | None = None
    document: MsgHeadDocument | None = None
    krav: BehandlerKrav | None = None
    evaluation: Evaluation | None = None
    finished: Outcome | None = None  # set by a stage that ends the run without a decision
    duplicate_of: int | None = None
    apprec_status: int | None = None
    remember_msg_id: bool = True  # False when the MsgId belongs to another message already
    replies: list[ReplyRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Result:
    """What ``Pipeline.handle`` did, for logs and tests."""

    received_id: int
    outcome: Outcome
    apprec_status: int | None
    replies: tuple[str, ...]  # kinds, in order
    detail: str | None


Stage = Callable[["Pipeline", Work], None]


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
        practitioners: Mapping[str, str] | None = None,
        partners: PartnerRegistry | None = None,
        decryption_keys: Sequence[cms.DecryptionKey] = (),
        security: SecurityConfig | None = None,
        stages: Sequence[Stage] | None = None,
    ) -> None:
        self.identity = identity
        #: ``STAGES`` unless wrapped (the daemon wraps them to count and time each).
        self.stages: tuple[Stage, ...] = tuple(stages) if stages is not None else STAGES
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
        self.practitioners: Mapping[str, str] = practitioners or {}
        self.store = store
        self.catalog = catalog
        self.signer = signer
        self.engine = engine
        self.max_message_bytes = max_message_bytes
        self.clock = clock

    # --- entry point ----------------------------------------------------------------------------

    def handle(self, raw: bytes, *, source: str, source_ref: str, source_name: str) -> Result:
        """Process one message and commit it with its replies. Never raises a MessageError."""
        work = Work(
            raw=raw,
            source=source,
            source_ref=source_ref,
            source_name=source_name,
            received_at=self.clock(),
            sha256=hashlib.sha256(raw).hexdigest(),
        )
        detail: str | None = None
        try:
            for stage in self.stages:
                stage(self, work)
                if work.finished is not None:
                    break
            outcome = work.finished or self._decide(work)
        except MessageError as error:
            outcome = self._answer_error(work, error)
            detail = f"{type(error).__name__}: {error.detail}"
        received_id = self.store.commit_intake(
            ReceivedRecord(
                received_at=work.received_at,
                source=work.source,
                source_ref=work.source_ref,
                raw=work.raw,
                sha256=work.sha256,
                outcome=outcome,
                detail=detail,
                duplicate_of=work.duplicate_of,
            ),
            self._message_record(work, outcome),
            work.evaluation,
            work.replies,
            practitioner_id=practitioner_id(work.document.head) if work.document else "",
            practitioner_type=(
                practitioner_type(work.document.head, self.practitioners)
                if work.document
                else None
            ),
        )
        if outcome is Outcome.SIGNAL and work.ebxml is not None and work.signal_trusted:
            # After the commit, in its own transaction: a crash in between leaves the signal
            # stored but unmatched, so our message is resent and acknowledged again.
            match_signal(self.store, work.ebxml, received_id, now=work.received_at)
        return Result(
            received_id=received_id,
            outcome=outcome,
            apprec_status=work.apprec_status,
            replies=tuple(r.kind for r in work.replies),
            detail=detail,
        )

    # --- answers --------------------------------------------------------------------------------

    def _replier(self, work: Work) -> Replier:
        encrypt_to = None
        if work.agreement is not None and self.security.encrypt_replies:
            partner = work.agreement.partner
            binding = partner.can_receive(CLAIM_SERVICE, REPLY_ACTION)
            if binding is not None and binding.packaging.encrypted:
                certificate = partner.encryption_certificate(CLAIM_SERVICE)
                problem = None if certificate is not None else "no encryption certificate"
                if certificate is not None:
                    try:
                        check_certificate(certificate, work.received_at, Purpose.ENCRYPTION)
                        encrypt_to = certificate
                    except CertificateInvalid as exc:
                        problem = exc.detail
                if encrypt_to is None:
                    # Often the very case being answered (an expired certificate pair): the
                    # sender must still learn why; an AppRec carries no patient data, so it
                    # goes signed but unencrypted rather than not at all (or crashing here).
                    log.warning(
                        "reply_not_encrypted",
                        cpa_id=work.agreement.cpa.cpa_id,
                        partner_her=partner.her_id,
                        reason=problem,
                    )
        return Replier(
            identity=self.identity,
            signer=self.signer,
            now=work.received_at,
            source_name=work.source_name,
            mail_to=self._reply_address(work),
            sign_envelopes=True,
            encrypt_to=encrypt_to,
        )

    def _reply_address(self, work: Work) -> str:
        if work.agreement is not None:
            # The CPA's transport endpoint, not whatever the mail's From header says.
            address = work.agreement.partner.channel_for(work.agreement.sent_as).mail_address
            if address:
                return address
        if work.mail_from:
            return work.mail_from
        if work.ebxml is not None:
            her = work.ebxml.header.from_party.id_of("HER")
            if her:
                return f"HER:{her}"
        if work.document is not None and work.document.head.sender.her_id:
            return f"HER:{work.document.head.sender.her_id}"
        return "unknown"

    def _answer_error(self, work: Work, error: MessageError) -> Outcome:
        receipt = receipt_for(error)
        replier = self._replier(work)
        log.info(
            "message_rejected",
            source_ref=work.source_ref,
            error=type(error).__name__,
            code=receipt.code,
            detail=error.detail,
        )
        if receipt.channel is ReplyChannel.EBXML_MESSAGE_ERROR:
            peeked = None
            if work.ebxml is None and work.package is not None:
                peeked = peek_message_id(work.package.envelope.body)
            work.replies.append(
                replier.message_error(
                    work.ebxml.header if work.ebxml else None,
                    receipt.code,
                    f"{receipt.text}: {error.detail}",
                    error.location,
                    ref_to_message_id=peeked,
                )
            )
            return Outcome.EBXML_ERROR
        # An application-level rejection: the ebXML message itself arrived fine.
        if work.ebxml is not None and work.ebxml.ack_requested:
            work.replies.append(replier.acknowledgment(work.ebxml))
        error_text = error.detail if not error.location else f"{error.detail} ({error.location})"
        work.apprec_status = int(AppRecStatus.AVVIST)
        work.replies.append(
            replier.apprec(
                incoming=work.ebxml,
                receiver=self._claim_sender(work),
                original=self._original_ref(work),
                status=AppRecStatus.AVVIST,
                errors=[
                    AppRecError(
                        code=receipt.code,
                        text=receipt.text,
                        code_system=receipt.code_system,
                        ot=error_text[:1000],
                    )
                ],
            )
        )
        return Outcome.REJECTED

    def _decide(self, work: Work) -> Outcome:
        """Answer a claim that went through the rules."""
        assert work.evaluation is not None
        evaluation = work.evaluation
        replier = self._replier(work)
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
                refusing = [
                    f for f in bill.findings if f.severity is not Severity.WARNING
                ]
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
        work.apprec_status = int(status)
        if work.ebxml is not None and work.ebxml.ack_requested:
            work.replies.append(replier.acknowledgment(work.ebxml))
        work.replies.append(
            replier.apprec(
                incoming=work.ebxml,
                receiver=self._claim_sender(work),
                original=self._original_ref(work),
                status=status,
                errors=errors,
            )
        )
        log.info(
            "claim_decided",
            source_ref=work.source_ref,
            apprec_status=int(status),
            bills=len(evaluation.bills),
            approved=len(evaluation.approved),
            rejected=len(evaluation.rejected),
        )
        return {
            AppRecStatus.OK: Outcome.ACCEPTED,
            AppRecStatus.AVVIST: Outcome.REJECTED,
            AppRecStatus.OK_FEIL_I_DELMELDING: Outcome.PARTIALLY_ACCEPTED,
        }[status]

    def _claim_sender(self, work: Work) -> Organisation:
        """Who the AppRec goes to: the MsgHead sender, else the ebXML From party."""
        if work.document is not None:
            return work.document.head.sender
        if work.ebxml is not None:
            her = work.ebxml.header.from_party.id_of("HER")
            if her:
                return Organisation(name=f"HER-id {her}", idents=(Ident(her, "HER"),))
        # Nothing readable names the sender: the AppRec still goes to the outbox, explicitly
        # addressed to an unknown HER id, so the rejection is on record.
        return Organisation(name="Ukjent avsender", idents=(Ident("ukjent", "HER"),))

    def _original_ref(self, work: Work) -> OriginalRef:
        if work.document is not None:
            head = work.document.head
            return OriginalRef(head.msg_type, head.gen_date, head.msg_id)
        issued = local_naive(
            work.ebxml.header.timestamp if work.ebxml is not None else work.received_at
        ).replace(microsecond=0)
        msg_id = work.ebxml.header.message_id if work.ebxml is not None else work.source_name
        return OriginalRef(Code("UKJENT", text="Ukjent meldingstype"), issued, msg_id)

    def _message_record(self, work: Work, outcome: Outcome) -> MessageRecord | None:
        """The ids to remember. Duplicates, signals and ebXML errors leave none: a message
        answered with a MessageError was not received, so a corrected retry with the same
        MessageId must be processed, not answered from the store."""
        if outcome in (Outcome.DUPLICATE, Outcome.SIGNAL, Outcome.EBXML_ERROR):
            return None
        if work.ebxml is None and work.document is None:
            return None
        header = work.ebxml.header if work.ebxml else None
        head: MsgHead | None = work.document.head if work.document else None
        return MessageRecord(
            cpa_id=header.cpa_id if header else None,
            ebxml_message_id=header.message_id if header else None,
            conversation_id=header.conversation_id if header else None,
            from_her=header.from_party.id_of("HER") if header else None,
            to_her=header.to_party.id_of("HER") if header else None,
            service=header.service if header else None,
            action=header.action if header else None,
            content_sha256=work.content_sha256,
            payload_sha256=work.payload_sha256,
            msg_id=head.msg_id if head and work.remember_msg_id else None,
            msg_type=head.msg_type.value if head else None,
            sender_her=head.sender.her_id if head else None,
            sender_name=head.sender.name if head else None,
            gen_date=head.gen_date if head else None,
            apprec_status=work.apprec_status,
            ruleset_version=work.evaluation.ruleset_version if work.evaluation else None,
        )

    # --- stages ---------------------------------------------------------------------------------

    def unwrap(self, work: Work) -> None:
        """MIME ebXML package, or a bare MsgHead document dropped as XML."""
        if len(work.raw) > self.max_message_bytes:
            raise MimeProblem(
                f"Meldingen er {len(work.raw)} byte; største tillatte er "
                f"{self.max_message_bytes} byte."
            )
        if _looks_like_xml(work.raw):
            work.payload = work.raw
            work.content_sha256 = work.sha256
            return
        work.package = mime.unwrap(work.raw)
        work.mail_from = _reply_address(_header(work.package, "From"))
        digest = hashlib.sha256(work.package.envelope.body)
        for part in work.package.attachments:
            digest.update(part.body)
        work.content_sha256 = digest.hexdigest()

    def read_envelope(self, work: Work) -> None:
        if work.package is None:
            return
        work.ebxml = parse_envelope(work.package.envelope.body)
        if work.ebxml.header.action in _SIGNAL_ACTIONS:
            # Signals for our own outbound messages: recorded, then matched after the commit.
            log.info(
                "signal_received",
                action=work.ebxml.header.action,
                ref_to=work.ebxml.header.ref_to_message_id,
            )
            work.finished = Outcome.SIGNAL
            work.signal_trusted = self._signal_trusted(work)

    def _signal_trusted(self, work: Work) -> bool:
        """Whether a signal may settle one of our messages: with partners configured, it must
        come from the other party of a CPA in force, signed by it where signatures are known.
        An untrusted signal is kept (received row) but matches nothing; signals are never
        answered, so there is nobody to tell."""
        if self.partners is None:
            return True
        assert work.ebxml is not None and work.package is not None
        header = work.ebxml.header
        cpa = self.partners.by_cpa_id(header.cpa_id)
        from_her = header.from_party.id_of("HER")
        partner = cpa.party_by_her(from_her) if cpa is not None and from_her else None
        if (
            cpa is None
            or partner is None
            or partner.her_id == self.identity.her_id
            or cpa.party_by_her(self.identity.her_id) is None
            or not cpa.in_force(work.received_at)
        ):
            log.warning("signal_untrusted", reason="no CPA with this sender", cpa_id=header.cpa_id)
            return False
        certificates = partner.signing_certificates()
        if not certificates:
            return not self.security.require_signed_ebxml
        try:
            verify_ebxml_envelope(
                work.package.envelope.body,
                {p.content_id: p.body for p in work.package.attachments if p.content_id},
                certificates,
                work.received_at,
                required=self.security.require_signed_ebxml,
            )
        except SecurityFailure as exc:
            log.warning("signal_untrusted", reason=exc.detail, cpa_id=header.cpa_id)
            return False
        return True

    def check_ebxml_duplicate(self, work: Work) -> None:
        if work.ebxml is None:
            return
        header = work.ebxml.header
        prior = self.store.message_by_ebxml_id(header.cpa_id, header.message_id)
        if prior is None:
            return
        if prior.content_sha256 and prior.content_sha256 != work.content_sha256:
            raise HeaderInconsistent(
                f"MessageId {header.message_id} er allerede mottatt med et annet innhold.",
                location="//eb:MessageHeader/eb:MessageData/eb:MessageId",
            )
        self._resend(work, prior.received_id, ack_again=False)

    def check_ebxml_addressing(self, work: Work) -> None:
        if work.ebxml is None:
            return
        header = work.ebxml.header
        if self.partners is not None:
            # CPAId, parties, roles, service and action against the sender's CPA.
            work.agreement = check_header(
                header,
                self.partners,
                self.identity.her_id,
                service=CLAIM_SERVICE,
                action=CLAIM_ACTION,
                at=work.received_at,
            )
            return
        to_her = header.to_party.id_of("HER")
        if to_her != self.identity.her_id:
            raise HeaderValueNotRecognized(
                f"Meldingen er adressert til HER-id {to_her}, men denne mottakeren har "
                f"HER-id {self.identity.her_id}.",
                location="//eb:MessageHeader/eb:To/eb:PartyId",
            )
        if header.service != CLAIM_SERVICE:
            raise HeaderValueNotRecognized(
                f"Tjenesten {header.service!r} tas ikke imot her; forventet {CLAIM_SERVICE!r}.",
                location="//eb:MessageHeader/eb:Service",
            )
        if header.action != CLAIM_ACTION:
            raise HeaderValueNotRecognized(
                f"Handlingen {header.action!r} tas ikke imot for tjenesten {CLAIM_SERVICE}; "
                f"forventet {CLAIM_ACTION!r}.",
                location="//eb:MessageHeader/eb:Action",
            )

    def verify_ebxml_signature(self, work: Work) -> None:
        """The ebXML signature (SOAP:Header) against the sender's signing certificate from its
        CPA; the header processed from here on is the one that was signed."""
        if work.agreement is None or work.package is None:
            return
        certificates = work.agreement.partner.signing_certificates(work.agreement.sent_as)
        if not certificates:
            if self.security.require_signed_ebxml:
                raise SecurityFailure(
                    "CPA-en har ikke noe signeringssertifikat for avsenderen, og signatur er "
                    "påkrevd.",
                    location="//eb:CPAId",
                )
            return
        signed = verify_ebxml_envelope(
            work.package.envelope.body,
            {p.content_id: p.body for p in work.package.attachments if p.content_id},
            certificates,
            work.received_at,
            required=self.security.require_signed_ebxml,
        )
        work.ebxml = parse_envelope(etree.tostring(signed))

    def extract_payload(self, work: Work) -> None:
        if work.package is None or work.ebxml is None:
            return
        if not work.ebxml.manifest:
            raise HeaderInconsistent(
                "ebXML-meldingen har ingen Manifest/Reference til en nyttelast.",
                location="//eb:Manifest",
            )
        reference = work.ebxml.manifest[0]
        part = work.package.part(reference.content_id or reference.href)
        if part is None:
            raise HeaderInconsistent(
                f"Manifest peker på {reference.href}, som ikke finnes i MIME-pakken.",
                location="//eb:Manifest/eb:Reference/@xlink:href",
            )
        body = part.body
        if part.content_type == "application/pkcs7-mime":
            if not self.decryption_keys:
                raise FeatureNotSupported(
                    "Nyttelasten er kryptert (CMS/PKCS#7), men denne mottakeren har ingen "
                    "dekrypteringsnøkkel konfigurert.",
                    location="//eb:Manifest/eb:Reference/@xlink:href",
                )
            body = cms.decrypt(body, self.decryption_keys, max_bytes=self.max_message_bytes)
        elif work.agreement is not None and work.agreement.payload_encrypted:
            raise SecurityFailure(
                "CPA-en krever kryptert nyttelast (application/pkcs7-mime), men nyttelasten "
                f"kom som {part.content_type}.",
                location="//eb:Manifest/eb:Reference/@xlink:href",
            )
        work.payload = self._gunzip(body)

    def _gunzip(self, body: bytes) -> bytes:
        if not body.startswith(b"\x1f\x8b"):
            return body
        # Bounded decompression: a small gzip bomb must not fill memory.
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(body, self.max_message_bytes + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise NotXml(f"Nyttelasten er gzip, men kan ikke pakkes ut: {exc}") from exc
        if len(data) > self.max_message_bytes or inflater.unconsumed_tail:
            raise NotXml(
                f"Utpakket nyttelast er større enn {self.max_message_bytes} byte."
            )
        return data

    def parse_payload(self, work: Work) -> None:
        assert work.payload is not None
        work.payload_sha256 = hashlib.sha256(work.payload).hexdigest()
        work.root = parse_xml(work.payload, max_bytes=self.max_message_bytes)

    def verify_msghead_signature(self, work: Work) -> None:
        """The MsgHead's enveloped signature against the sender's certificate from its CPA.
        What is processed from here on is the element that was signed, nothing around it."""
        if work.agreement is None:
            return
        assert work.root is not None
        if etree.QName(work.root).namespace != MSGHEAD_NS:
            return  # not a MsgHead: ``validate`` answers it
        certificates = work.agreement.partner.signing_certificates(work.agreement.sent_as)
        if not certificates:
            if self.security.require_signed_msghead:
                raise SecurityFailure(
                    "CPA-en har ikke noe signeringssertifikat for avsenderen, så signaturen på "
                    "MsgHead kan ikke kontrolleres.",
                    location="//eb:CPAId",
                )
            return
        work.root = verify_msghead(
            work.root,
            certificates,
            work.received_at,
            required=self.security.require_signed_msghead,
        )

    def validate(self, work: Work) -> None:
        assert work.root is not None
        if etree.QName(work.root).namespace != MSGHEAD_NS:
            raise UnsupportedMessageType(
                f"Rotelementet er {{{etree.QName(work.root).namespace}}}"
                f"{etree.QName(work.root).localname}; forventet MsgHead "
                f"({MSGHEAD_NS})."
            )
        content = work.root.find(_CONTENT_PATH)
        if content is not None and etree.QName(content).namespace != BKM_NS:
            # Say "not a message type we take" rather than a schema error about a wildcard.
            raise UnsupportedMessageType(
                f"Innholdet er {etree.QName(content).localname} i navnerommet "
                f"{etree.QName(content).namespace}; denne mottakeren tar bare imot "
                f"BehandlerKrav ({BKM_NS})."
            )
        report = self.catalog.validate(work.root)
        if not report.valid:
            self._try_read_head(work)  # to address the AppRec properly, if possible
            if work.document is not None:
                # Its MsgId is known, so it is remembered: it may also be a message we know.
                self.check_msghead_duplicate(work)
                if work.finished is not None:
                    return
            first = report.problems[0]
            more = f" (og {len(report.problems) - 1} feil til)" if len(report.problems) > 1 else ""
            raise SchemaInvalid(
                f"Linje {first.line}: {first.reason}{more}", location=first.path
            )

    def _try_read_head(self, work: Work) -> None:
        assert work.root is not None
        try:
            work.document = parse_msghead(work.root)
        except ContentError:
            work.document = None

    def read_msghead(self, work: Work) -> None:
        assert work.root is not None
        work.document = parse_msghead(work.root)

    def check_msghead_duplicate(self, work: Work) -> None:
        assert work.document is not None
        head = work.document.head
        if not head.sender.her_id:
            return
        prior = self.store.message_by_msg_id(head.sender.her_id, head.msg_id)
        if prior is None:
            return
        if prior.payload_sha256 and prior.payload_sha256 != work.payload_sha256:
            # Another claim under a known MsgId: answering it from the store would tell the
            # sender its bills were handled when they never were.
            work.remember_msg_id = False
            raise MsgIdReused(
                f"MsgId {head.msg_id} er allerede brukt av denne avsenderen for en melding med "
                "et annet innhold. Send meldingen på nytt med en ny MsgId."
            )
        self._resend(work, prior.received_id, ack_again=True)

    def check_receiver(self, work: Work) -> None:
        assert work.document is not None
        sender_her = work.document.head.sender.her_id
        agreement = work.agreement
        if agreement is not None and sender_her and sender_her != agreement.partner.her_id:
            # A partner signs for itself only: a claim in another organisation's name is not
            # one this CPA covers.
            raise HeaderInconsistent(
                f"MsgHead er sendt fra HER-id {sender_her}, men CPA-en "
                f"{agreement.cpa.cpa_id} gjelder HER-id {agreement.partner.her_id}.",
                location="/MsgHead/MsgInfo/Sender/Organisation/Ident",
            )
        receiver_her = work.document.head.receiver.her_id
        if receiver_her != self.identity.her_id:
            raise UnknownReceiver(
                f"MsgHead er adressert til HER-id {receiver_her}, men denne mottakeren har "
                f"HER-id {self.identity.her_id}.",
                location="/MsgHead/MsgInfo/Receiver/Organisation/Ident",
            )

    def read_claim(self, work: Work) -> None:
        assert work.document is not None
        work.krav = parse_behandlerkrav(work.document.content)

    def run_rules(self, work: Work) -> None:
        assert work.document is not None and work.krav is not None
        head = work.document.head
        ctx = ClaimContext(
            head=head,
            krav=work.krav,
            sender_her=head.sender.her_id or "",
            received_at=local_naive(work.received_at),
            history=self.store,
            tariffs=self.tariffs,
            practitioner=practitioner_type(head, self.practitioners),
            practitioner_id=practitioner_id(head),
        )
        work.evaluation = self.engine.evaluate(ctx)

    # --- duplicates -----------------------------------------------------------------------------

    def _resend(self, work: Work, prior_id: int, *, ack_again: bool) -> None:
        """Answer a message we already processed with the replies it got the first time."""
        replier = self._replier(work)
        if ack_again and work.ebxml is not None and work.ebxml.ack_requested:
            work.replies.append(replier.acknowledgment(work.ebxml))
        for stored in self.store.replies_for(prior_id):
            if ack_again and stored.kind == "acknowledgment":
                continue  # that ack was for the earlier ebXML message
            work.replies.append(
                ReplyRecord(
                    kind=stored.kind,
                    recipient=stored.recipient,
                    filename=_again(stored.filename),
                    body=stored.body,
                    ebxml_message_id=stored.ebxml_message_id,
                    ref_to_message_id=stored.ref_to_message_id,
                )
            )
        work.duplicate_of = prior_id
        work.finished = Outcome.DUPLICATE
        log.info("duplicate_answered_again", source_ref=work.source_ref, first=prior_id)


#: The order of the stages, declared once.
STAGES: tuple[Stage, ...] = (
    Pipeline.unwrap,
    Pipeline.read_envelope,
    Pipeline.check_ebxml_addressing,
    Pipeline.verify_ebxml_signature,
    # After the CPA and signature checks: only an authenticated sender gets stored replies.
    Pipeline.check_ebxml_duplicate,
    Pipeline.extract_payload,
    Pipeline.parse_payload,
    Pipeline.verify_msghead_signature,
    Pipeline.validate,
    Pipeline.read_msghead,
    Pipeline.check_msghead_duplicate,
    Pipeline.check_receiver,
    Pipeline.read_claim,
    Pipeline.run_rules,
)


def _looks_like_xml(raw: bytes) -> bool:
    head = raw[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _header(package: mime.MimePackage, name: str) -> str | None:
    for key, value in package.mail_headers:
        if key.lower() == name.lower():
            return value
    return None


def _reply_address(from_header: str | None) -> str | None:
    """The sender's mail address if the From header holds a clean one; else None (the reply
    is then addressed by ebXML party). A mangled header must not break the reply."""
    if not from_header:
        return None
    _, address = email.utils.parseaddr(from_header)
    return address if _MAIL_ADDRESS.fullmatch(address) else None


def _again(filename: str) -> str:
    """A new, unique name for a stored reply sent again; the kind keeps its place."""
    stem, _, ext = filename.rpartition(".")
    return f"{stem}-again{uuid.uuid4().hex[:6]}.{ext}"


__all__ = ["STAGES", "EbxmlError", "Pipeline", "Result", "Work"]
