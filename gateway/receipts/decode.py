"""A stored reply made readable: what the AppRec (or ebXML signal, or payout decision) says and
its documents as indented XML, instead of base64 MIME.

Pure: bytes in, values out. Each surface words it in its own language (``summary`` with a
``Wording``): English here for the shell (``gateway outbox show``, ``gateway messages show``),
Norwegian in ``gateway.web.replies`` for the console. A payload encrypted to the partner (CMS)
cannot be read back by us; ``encrypted`` counts those parts. The AppRec is found bare (as it is
sent, v1.0 or v1.1) or inside a MsgHead carrier; a detached CMS signature (the ``.p7s`` beside a
bare AppRec file) is named as such. Every 11-digit run in a text or document is redacted, so a
national id never reaches the terminal or the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.namespaces import APPREC_NS, EB_NS, MSGHEAD_NS
from gateway.errors import GatewayError
from gateway.logs import redact
from gateway.receipts.apprec import APPREC_V1_1_NS
from gateway.validation.safe_xml import parse_xml

_ENCRYPTED = ("application/pkcs7-mime", "application/x-pkcs7-mime")
#: The AppRec namespaces, 1.0 and 1.1.
_APPRECS = (APPREC_NS, APPREC_V1_1_NS)
#: What a detached CMS signature file (DER, a SEQUENCE) is shown as.
DETACHED_SIGNATURE = (
    "(a detached CMS signature over the AppRec file of the same name without .p7s; "
    "check it with: openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE "
    "-noverify -certfile OUR-CERT.pem -nointern)"
)

#: Where a document came from: the SOAP envelope, an attachment, a bare XML body, or the AppRec
#: found inside one of them (shown first).
Part = Literal["envelope", "attachment", "document", "apprec"]

#: What a document is.
Kind = Literal["apprec", "message_error", "acknowledgment", "ebxml", "msghead"]


@dataclass(frozen=True, slots=True)
class Document:
    part: Part
    content_id: str | None
    xml: str  # indented, redacted; or why it is not XML


@dataclass(frozen=True, slots=True)
class Complaint:
    """One Error of an AppRec: its code, text and the bill (RegningNr) it is about."""

    code: str
    text: str
    regning_nr: str | None


@dataclass(frozen=True, slots=True)
class Said:
    """What one document says."""

    kind: Kind
    #: AppRec: the Status V; MessageError: the errorCode; ebXML: the Action; MsgHead: Type V.
    code: str
    #: AppRec: the Status DN; MessageError: its Description; MsgHead: the Type DN.
    text: str = ""
    errors: tuple[Complaint, ...] = ()
    #: AppRec: the MsgId it answers; Acknowledgment: the ebXML MessageId it acknowledges.
    answers: str | None = None


@dataclass(frozen=True, slots=True)
class DecodedReply:
    said: tuple[Said, ...]
    documents: tuple[Document, ...]
    #: Attachments encrypted to the recipient (CMS), which only the recipient can read.
    encrypted: int = 0
    #: Why the body could not be read at all (then nothing else is set).
    problem: str | None = None


def decode_reply(body: bytes) -> DecodedReply:
    """The readable parts of a reply body (ebXML MIME, or a bare XML document)."""
    if body.lstrip().startswith(b"<"):
        return _from_documents([("document", None, body)])
    if body.startswith(b"\x30"):  # DER: the detached signature beside a bare AppRec file
        return DecodedReply((), (Document("document", None, DETACHED_SIGNATURE),))
    try:
        package = mime.unwrap(body)
    except GatewayError as exc:
        return DecodedReply((), (), problem=redact(str(exc)))
    parts: list[tuple[Part, str | None, bytes]] = [("envelope", None, package.envelope.body)]
    encrypted = 0
    for attachment in package.attachments:
        if attachment.content_type in _ENCRYPTED:
            encrypted += 1
        else:
            parts.append(("attachment", attachment.content_id or None, attachment.body))
    decoded = _from_documents(parts)
    return DecodedReply(decoded.said, decoded.documents, encrypted=encrypted)


def _from_documents(parts: list[tuple[Part, str | None, bytes]]) -> DecodedReply:
    apprecs: list[Document] = []
    documents: list[Document] = []
    said: list[Said] = []
    for part, content_id, data in parts:
        try:
            root = parse_xml(data)
        except GatewayError as exc:
            documents.append(Document(part, content_id, redact(f"(not XML: {exc})")))
            continue
        found = said_in(root)
        if found is not None:
            said.append(found)
        if etree.QName(root).namespace in _APPRECS:
            # The bare AppRec, as it is sent: shown first, as what the reply says.
            apprecs.append(Document("apprec", None, _pretty(root)))
            continue
        for apprec in (a for ns in _APPRECS for a in root.iter(f"{{{ns}}}AppRec")):
            # The AppRec inside MsgHead/Document/RefDoc/Content, shown on its own first.
            apprecs.append(Document("apprec", None, _pretty(apprec)))
        documents.append(Document(part, content_id, _pretty(root)))
    return DecodedReply(tuple(said), (*apprecs, *documents))


def _pretty(element: etree._Element) -> str:
    copy = etree.fromstring(etree.tostring(element))
    etree.indent(copy, space="  ")
    return redact(etree.tostring(copy, encoding="unicode"))


def _attr(element: etree._Element | None, name: str) -> str:
    return "" if element is None else redact(str(element.get(name) or "").strip())


def _text(element: etree._Element | None) -> str:
    return "" if element is None or element.text is None else redact(element.text.strip())


def said_in(root: etree._Element) -> Said | None:
    """What the AppRec, ebXML signal or MsgHead in ``root`` says (None: none of those)."""
    apprec = next((a for ns in _APPRECS for a in root.iter(f"{{{ns}}}AppRec")), None)
    if apprec is not None:
        ar = f"{{{etree.QName(apprec).namespace}}}"
        status = apprec.find(f"{ar}Status")
        return Said(
            "apprec",
            _attr(status, "V"),
            _attr(status, "DN"),
            errors=tuple(
                Complaint(_attr(e, "V"), _attr(e, "DN"), _attr(e, "OT") or None)
                for e in apprec.findall(f"{ar}Error")
            ),
            answers=_text(apprec.find(f"{ar}OriginalMsgId/{ar}Id")) or None,
        )
    eb = f"{{{EB_NS}}}"
    error = next(root.iter(f"{eb}Error"), None)
    if error is not None:
        code = _attr(error, f"{eb}errorCode") or _attr(error, "errorCode")
        return Said("message_error", code, _text(next(error.iter(f"{eb}Description"), None)))
    if next(root.iter(f"{eb}Acknowledgment"), None) is not None:
        ref = _text(next(root.iter(f"{eb}RefToMessageId"), None))
        return Said("acknowledgment", "", answers=ref or None)
    header = next(root.iter(f"{eb}MessageHeader"), None)
    if header is not None:
        return Said("ebxml", _text(next(header.iter(f"{eb}Action"), None)))
    msg_type = next(root.iter(f"{{{MSGHEAD_NS}}}Type"), None)
    if msg_type is not None:
        return Said("msghead", _attr(msg_type, "V"), _attr(msg_type, "DN"))
    return None


# --- in words -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wording:
    """How one surface words a reply, in its language: templates for ``str.format``."""

    statuses: dict[str, str]  # AppRec Status V -> its name (else the Status DN)
    status: str  # {code} {text}
    errors: str  # {count} {listed}
    more: str  # {count}: errors not listed
    answers: str  # {id}: the MsgId an AppRec answers
    message_error: str  # {code} {text}
    acknowledgment: str  # {ref}
    ebxml: str  # {action}
    msghead: str  # {code} {text}
    encrypted: str  # {count}
    nothing: str
    unreadable: str  # {problem}
    separator: str  # between what each document says


#: The shell's words (``gateway outbox show``, ``gateway messages show``).
ENGLISH = Wording(
    statuses={"1": "OK", "2": "rejected", "3": "OK with errors in part of the message"},
    status="AppRec status {code} ({text})",
    errors=", {count} error(s): {listed}",
    more=" and {count} more",
    answers=", answering MsgId {id}",
    message_error="ebXML MessageError {code}: {text}",
    acknowledgment="ebXML Acknowledgment of {ref}",
    ebxml="ebXML message, Action {action}",
    msghead="MsgHead {code} ({text})",
    encrypted="{count} attachment(s) encrypted to the recipient (CMS), not readable here",
    nothing="no known message found",
    unreadable="cannot be read: {problem}",
    separator="; ",
)

#: How many of an AppRec's errors a summary names.
SHOWN_ERRORS = 5


def summary(decoded: DecodedReply, words: Wording = ENGLISH) -> str:
    """One line about the reply (the errors' own texts as they were sent)."""
    if decoded.problem is not None:
        return words.unreadable.format(problem=decoded.problem)
    clauses = [_said(s, words) for s in decoded.said] or [words.nothing]
    if decoded.encrypted:
        clauses.append(words.encrypted.format(count=decoded.encrypted))
    return words.separator.join(c.strip().rstrip(".") for c in clauses) + "."


def _said(said: Said, words: Wording) -> str:
    if said.kind == "apprec":
        text = words.status.format(code=said.code, text=words.statuses.get(said.code, said.text))
        if said.errors:
            listed = "; ".join(
                f"{e.code} {e.text}" + (f" (RegningNr {e.regning_nr})" if e.regning_nr else "")
                for e in said.errors[:SHOWN_ERRORS]
            )
            text += words.errors.format(count=len(said.errors), listed=listed)
            if len(said.errors) > SHOWN_ERRORS:
                text += words.more.format(count=len(said.errors) - SHOWN_ERRORS)
        return text + (words.answers.format(id=said.answers) if said.answers else "")
    if said.kind == "message_error":
        return words.message_error.format(code=said.code, text=said.text)
    if said.kind == "acknowledgment":
        return words.acknowledgment.format(ref=said.answers or "?")
    if said.kind == "ebxml":
        return words.ebxml.format(action=said.code or "?")
    return words.msghead.format(code=said.code, text=said.text)
