"""A stored reply as the console shows it: ``gateway.receipts.decode`` worded in Norwegian (the
shell words the same values in English), with a title for each document."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.receipts.decode import Document, Wording, decode_reply, summary

NORWEGIAN = Wording(
    statuses={"1": "OK", "2": "Avvist", "3": "OK, feil i delmelding"},
    status="AppRec status {code} ({text})",
    errors=": {count} feil – {listed}",
    more=" og {count} til",
    answers=". Svar på MsgId {id}",
    message_error="ebXML MessageError {code}: {text}",
    acknowledgment="ebXML Acknowledgment for {ref}",
    ebxml="ebXML-melding, Action {action}",
    msghead="MsgHead {code} ({text})",
    encrypted="{count} vedlegg er kryptert til mottakeren (CMS) og kan ikke vises her",
    nothing="Ingen kjent melding funnet",
    unreadable="Kan ikke leses: {problem}",
    separator=". ",
)

_PART_TITLES = {
    "envelope": "ebXML-konvolutt (SOAP)",
    "attachment": "Vedlegg",
    "document": "Dokument",
    "apprec": "AppRec",
}


@dataclass(frozen=True, slots=True)
class ShownDocument:
    title: str
    xml: str  # indented, redacted


@dataclass(frozen=True, slots=True)
class ReadableReply:
    summary: str
    documents: tuple[ShownDocument, ...]


def readable_reply(body: bytes) -> ReadableReply:
    """The reply's summary in Norwegian and its documents with their titles."""
    decoded = decode_reply(body)
    return ReadableReply(
        summary(decoded, NORWEGIAN), tuple(_shown(d) for d in decoded.documents)
    )


def _shown(document: Document) -> ShownDocument:
    title = _PART_TITLES[document.part]
    if document.content_id:
        title += f" {document.content_id}"
    return ShownDocument(title, document.xml)
