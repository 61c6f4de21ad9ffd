"""A stored reply made readable: the AppRec (or ebXML signal, or payout decision) as indented XML
and a one-line summary, instead of base64 MIME.

Pure: bytes in, text out (no web code), so ``gateway outbox show`` can use it too. A payload
encrypted to the partner (CMS) cannot be read back by us: the summary says so. Every 11-digit
run in the text shown is redacted (a national id never reaches the page).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.namespaces import APPREC_NS, EB_NS, MSGHEAD_NS
from gateway.errors import GatewayError
from gateway.logs import redact
from gateway.validation.safe_xml import parse_xml

_STATUS_TEXT = {"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"}
_ENCRYPTED = ("application/pkcs7-mime", "application/x-pkcs7-mime")


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    xml: str  # indented, redacted


@dataclass(frozen=True, slots=True)
class DecodedReply:
    summary: str
    documents: tuple[Document, ...]


def decode_reply(body: bytes) -> DecodedReply:
    """The readable parts of a reply body (ebXML MIME, or a bare XML document)."""
    stripped = body.lstrip()
    if stripped.startswith(b"<"):
        return _from_documents([("Dokument", body)])
    try:
        package = mime.unwrap(body)
    except GatewayError as exc:
        return DecodedReply(f"Kan ikke leses: {exc}", ())
    parts: list[tuple[str, bytes]] = [("ebXML-konvolutt (SOAP)", package.envelope.body)]
    encrypted = 0
    for part in package.attachments:
        if part.content_type in _ENCRYPTED:
            encrypted += 1
            continue
        parts.append((f"Vedlegg {part.content_id or ''}".strip(), part.body))
    decoded = _from_documents(parts)
    if encrypted:
        note = f"{encrypted} vedlegg er kryptert til mottakeren (CMS) og kan ikke vises her."
        return DecodedReply(f"{decoded.summary} {note}".strip(), decoded.documents)
    return decoded


def _from_documents(parts: list[tuple[str, bytes]]) -> DecodedReply:
    apprecs: list[Document] = []
    documents: list[Document] = []
    summaries: list[str] = []
    for title, data in parts:
        try:
            root = parse_xml(data)
        except GatewayError as exc:
            documents.append(Document(title, f"(ikke XML: {exc})"))
            continue
        summary = summarise(root)
        if summary:
            summaries.append(summary)
        for apprec in root.iter(f"{{{APPREC_NS}}}AppRec"):
            if apprec is not root:
                # The AppRec inside MsgHead/Document/RefDoc/Content, shown on its own first.
                apprecs.append(Document("AppRec", _pretty(apprec)))
        documents.append(Document(title, _pretty(root)))
    summary = " ".join(summaries) or "Ingen kjent melding funnet."
    return DecodedReply(summary, (*apprecs, *documents))


def _pretty(element: etree._Element) -> str:
    copy = etree.fromstring(etree.tostring(element))
    etree.indent(copy, space="  ")
    return redact(etree.tostring(copy, encoding="unicode"))


def _attr(element: etree._Element | None, name: str) -> str:
    return "" if element is None else str(element.get(name) or "")


def summarise(root: etree._Element) -> str:
    """One line about the AppRec, ebXML signal or MsgHead in ``root`` ('' if none)."""
    ar = f"{{{APPREC_NS}}}"
    apprec = root if root.tag == f"{ar}AppRec" else next(root.iter(f"{ar}AppRec"), None)
    if apprec is not None:
        status = apprec.find(f"{ar}Status")
        value = _attr(status, "V")
        errors = apprec.findall(f"{ar}Error")
        text = f"AppRec status {value} ({_STATUS_TEXT.get(value, _attr(status, 'DN'))})"
        if errors:
            listed = "; ".join(
                f"{_attr(e, 'V')} {_attr(e, 'DN')}"
                + (f" (RegningNr {_attr(e, 'OT')})" if _attr(e, "OT") else "")
                for e in errors[:5]
            )
            more = f" og {len(errors) - 5} til" if len(errors) > 5 else ""
            text += f": {len(errors)} feil – {listed}{more}"
        original = apprec.find(f"{ar}OriginalMsgId/{ar}Id")
        if original is not None and original.text:
            text += f". Svar på MsgId {original.text.strip()}"
        return redact(text + ".")
    eb = f"{{{EB_NS}}}"
    error = next(root.iter(f"{eb}Error"), None)
    if error is not None:
        description = next(error.iter(f"{eb}Description"), None)
        detail = description.text.strip() if description is not None and description.text else ""
        code = _attr(error, f"{eb}errorCode") or _attr(error, "errorCode")
        return redact(f"ebXML MessageError {code}: {detail}".strip())
    if next(root.iter(f"{eb}Acknowledgment"), None) is not None:
        ref = next(root.iter(f"{eb}RefToMessageId"), None)
        target = ref.text.strip() if ref is not None and ref.text else "?"
        return f"ebXML Acknowledgment for {target}."
    header = next(root.iter(f"{eb}MessageHeader"), None)
    if header is not None:
        action = next(header.iter(f"{eb}Action"), None)
        return f"ebXML-melding, Action {action.text if action is not None else '?'}."
    mh = f"{{{MSGHEAD_NS}}}"
    msg_type = next(root.iter(f"{mh}Type"), None)
    if msg_type is not None:
        return f"MsgHead {_attr(msg_type, 'V')} ({_attr(msg_type, 'DN')})."
    return ""
