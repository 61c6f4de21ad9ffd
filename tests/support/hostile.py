"""The hostile corpus: hundreds of hostile inputs, each with the one answer it must get.

Generated deterministically at test time (the big ones would bloat the repository): the same
seed gives the same bytes. Families: XML (entities, DTDs, XInclude, depth, width, attributes,
encodings, truncation, schema breakage), MIME (boundaries, nesting, parts, headers, transfer
encodings, charsets, cid references), compression, size, signatures (wrapping, tampering,
wrong key, expired, missing: these need partners, ``Case.secured``), ebXML headers (unknown CPA,
wrong roles, service, action, replays) and file-system cases (``Case.fs``: daemon only).

An answer is written as the sender sees it:

- ``accepted``: AppRec status 1; ``duplicate``: the stored replies again;
- ``apprec:<V>``: a rejecting AppRec whose first Error has code V (T01, T02, S01, ...);
- ``ebxml:<errorCode>``: an ebXML MessageError (MimeProblem, Inconsistent, ...);
- ``parked:<kind>``: not answered, parked in ``bad/`` with a reason (not a regular file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.ebxml import mime
from gateway.ebxml.namespaces import EB_NS
from gateway.errors import MessageError, ReplyChannel, receipt_for
from gateway.pipeline import Result
from gateway.receipts.apprec import read_apprec
from gateway.records import Outcome


@dataclass(frozen=True, slots=True)
class Case:
    """One hostile input and the answer it must get."""

    name: str
    family: str
    data: bytes
    expect: str
    #: Needs a pipeline with partners (CPA, signatures, decryption).
    secured: bool = False
    #: A file-system case for the daemon: "symlink", "fifo", "directory", "nonutf8", "longname".
    fs: str | None = None
    #: Handed on as it is by the daemon only (``Truncated`` in the pipeline run).
    oversized: bool = False
    #: Run twice: the second run must get ``expect`` (a replay).
    replay: bool = False


def answer(result: Result, replies: Sequence[bytes]) -> str:
    """The answer a sender sees, in the corpus's notation."""
    outcome = result.outcome
    if outcome is Outcome.ACCEPTED:
        return "accepted"
    if outcome is Outcome.PARTIALLY_ACCEPTED:
        return "partial"
    if outcome is Outcome.DUPLICATE:
        return "duplicate"
    if outcome is Outcome.FAILED:
        return "failed"
    refused = _error_class(result.detail)
    if refused is not None:
        receipt = receipt_for(refused(""))
        channel = "ebxml" if receipt.channel is ReplyChannel.EBXML_MESSAGE_ERROR else "apprec"
        return f"{channel}:{receipt.code}"
    return answer_of_replies(replies) or outcome.value


def _error_class(detail: str | None) -> type[MessageError] | None:
    """The MessageError subclass a refused message's ``detail`` names (``Name: text``)."""
    if not detail:
        return None
    name = detail.split(":", 1)[0]
    pending: list[type[MessageError]] = [MessageError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def answer_of_replies(replies: Iterable[bytes]) -> str | None:
    """``apprec:<V>``/``ebxml:<code>``/``accepted`` from reply bodies (file or mail)."""
    for body in replies:
        if _detached_signature(body):
            continue  # the .p7s beside a bare AppRec file: the AppRec says the answer
        if body.lstrip().startswith(b"<"):
            return _apprec_answer(body)
        package = mime.unwrap(body)
        for error in etree.fromstring(package.envelope.body).iter(f"{{{EB_NS}}}Error"):
            code = error.get(f"{{{EB_NS}}}errorCode") or error.get("errorCode")
            return f"ebxml:{code}"
        for part in package.attachments:
            if part.body.lstrip().startswith(b"<"):
                return _apprec_answer(part.body)
    return None


def _detached_signature(body: bytes) -> bool:
    """A DER CMS SignedData (a SEQUENCE with a long-form length), never a MIME mail or XML."""
    return body[:1] == b"\x30" and body[1:2] in (b"\x80", b"\x81", b"\x82", b"\x83")


def _apprec_answer(body: bytes) -> str:
    apprec = read_apprec(body)
    codes = [e.get("V", "") for e in apprec.iter("{*}Error")]
    status = next((s.get("V") for s in apprec.iter("{*}Status")), None)
    if status == "1":
        return "accepted"
    return f"apprec:{codes[0]}" if codes else f"apprec:status-{status}"
