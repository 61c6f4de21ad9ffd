"""``gateway validate``: what a file is, and whether each XML document in it is valid.

Accepts a MIME ebXML message (``.msg``/``.eml``), a MsgHead document, or a bare BehandlerKrav.
Pure: bytes in, a report out. A file is opened as the pipeline opens it (``gateway.ebxml.unwrap``
and ``gateway.ebxml.payload``), with the same bounds on its size and on an unpacked payload.
Two checks go further, each answered by the daemon's own code:

- ``--verify-signatures`` (``gateway.validate_signatures``): the ebXML and MsgHead signatures,
  against a given certificate or CPA, or (not pinned) the one the signature carries;
- ``--decide`` (``gateway.validate_decide``): the whole pipeline, every rule, on a copy of the
  configured database, and the AppRec the daemon would send.

The verdict per file:

- ``valid``: every document in it passes its schema (and a claim parses); with the further
  checks, every signature verifies and the daemon would accept the claim whole;
- ``invalid``: it could be read, but a document fails its schema, the claim cannot be parsed,
  a signature does not verify, or the daemon would reject the claim or any of its bills;
- ``unusable``: it cannot be read as any of the accepted kinds (broken MIME, not well-formed XML,
  an encrypted payload this tool cannot open).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.claims.bkm import parse_behandlerkrav
from gateway.claims.model import BehandlerKrav
from gateway.claims.msghead import parse_msghead
from gateway.ebxml.envelope import parse_envelope
from gateway.ebxml.mime import MimePackage
from gateway.ebxml.model import ManifestReference
from gateway.ebxml.namespaces import BKM_NS, MSGHEAD_NS
from gateway.ebxml.payload import inflate, is_encrypted, manifest_part
from gateway.ebxml.unwrap import BareDocument, looks_like_xml, unwrap
from gateway.errors import EbxmlError, HeaderInconsistent, MessageError, NotXml
from gateway.validation.catalog import SchemaCatalog
from gateway.validation.report import ValidationReport
from gateway.validation.safe_xml import DEFAULT_MAX_XML_BYTES, parse_xml

if TYPE_CHECKING:  # only their values are held here: the checks import the daemon's parts
    from gateway.validate_decide import Decision
    from gateway.validate_signatures import SignatureCheck


class Verdict(enum.IntEnum):
    """Ordered so the worst verdict of several files is their max; values are exit codes."""

    VALID = 0
    INVALID = 1
    UNUSABLE = 2


@dataclass(slots=True)
class Inspection:
    """What ``gateway validate`` found in one file."""

    name: str
    kind: str = "unknown"
    verdict: Verdict = Verdict.VALID
    notes: list[str] = field(default_factory=list)
    reports: list[ValidationReport] = field(default_factory=list)
    claim: dict[str, Any] | None = None
    signatures: list[SignatureCheck] | None = None
    decision: Decision | None = None

    def worsen(self, verdict: Verdict, note: str) -> None:
        self.verdict = max(self.verdict, verdict)
        self.notes.append(note)

    def add_signatures(self, checks: list[SignatureCheck]) -> None:
        """``--verify-signatures``: a signature that fails makes the file invalid."""
        self.signatures = checks
        for check in checks:
            if check.failed:
                self.worsen(Verdict.INVALID, f"{check.what} signature does not verify")

    def add_decision(self, decision: Decision) -> None:
        """``--decide``: a claim the daemon would not accept whole is never reported as fine."""
        self.decision = decision
        if not decision.fine:
            answer = decision.outcome.value
            if decision.apprec_status:
                answer += f" (AppRec status {decision.apprec_status})"
            self.worsen(Verdict.INVALID, f"the daemon would answer {answer}")

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "file": self.name,
            "kind": self.kind,
            "verdict": self.verdict.name.lower(),
            "notes": self.notes,
            "documents": [r.to_dict() for r in self.reports],
            "claim": self.claim,
        }
        if self.signatures is not None:
            found["signatures"] = [check.to_dict() for check in self.signatures]
        if self.decision is not None:
            found["decision"] = self.decision.to_dict()
        return found

    def render(self) -> str:
        lines = [f"{self.name}: {self.verdict.name.lower()} ({self.kind})"]
        lines += [f"  - {note}" for note in self.notes]
        for report in self.reports:
            lines += ["  " + line for line in report.summary().splitlines()]
        if self.claim:
            c = self.claim
            lines.append(
                f"  claim: {c['bills']} bill(s), AntallRegninger {c['antall_regninger']}, "
                f"SumKravSamlet {c['sum_krav_samlet']} (bills sum to {c['sum_of_bills']})"
            )
        lines += [f"  {check.render()}" for check in self.signatures or ()]
        if self.decision is not None:
            lines += [f"  {line}" for line in self.decision.render()]
        return "\n".join(lines)


def inspect_bytes(
    name: str, data: bytes, catalog: SchemaCatalog, *, max_bytes: int = DEFAULT_MAX_XML_BYTES
) -> Inspection:
    """Inspect one file's bytes; ``max_bytes`` bounds the file and any unpacked payload, as
    ``validation.max_message_bytes`` does in the daemon."""
    result = Inspection(name=name)
    try:
        unwrapped = unwrap(data, max_bytes=max_bytes)
    except MessageError as exc:
        xml = looks_like_xml(data)  # refused for its size alone
        result.kind = "unknown" if xml else "mime"
        result.worsen(Verdict.UNUSABLE, f"{'document' if xml else 'MIME'}: {exc.detail}")
        return result
    if isinstance(unwrapped, BareDocument):
        _inspect_xml(result, unwrapped.payload, catalog, max_bytes=max_bytes)
        return result
    package = unwrapped.package
    result.kind = "ebxml"
    _inspect_document(result, "ebXML envelope", package.envelope.body, catalog, max_bytes)
    try:
        message = parse_envelope(package.envelope.body)
    except EbxmlError as exc:
        where = f" at {exc.location}" if exc.location else ""
        result.worsen(Verdict.INVALID, f"ebXML header: {exc.detail}{where}")
        return result
    h = message.header
    result.notes.append(
        f"ebXML: {h.from_party.id_of('HER')} -> {h.to_party.id_of('HER')}, CPAId {h.cpa_id}, "
        f"{h.service}/{h.action}, MessageId {h.message_id}"
    )
    for reference in message.manifest:
        _inspect_payload(result, package, reference, catalog, max_bytes)
    return result


def _inspect_payload(
    result: Inspection,
    package: MimePackage,
    reference: ManifestReference,
    catalog: SchemaCatalog,
    max_bytes: int,
) -> None:
    label = f"payload {reference.href}"
    try:
        part = manifest_part(package, reference)
    except HeaderInconsistent:
        result.worsen(Verdict.INVALID, f"manifest names {reference.href}, which is missing")
        return
    if is_encrypted(part):
        result.worsen(Verdict.UNUSABLE, f"{label} is CMS-encrypted; cannot validate it")
        return
    try:
        body = inflate(part.body, max_bytes=max_bytes)
    except NotXml as exc:
        result.worsen(Verdict.UNUSABLE, f"{label}: {exc.detail}")
        return
    _inspect_xml(result, body, catalog, label=label, max_bytes=max_bytes)


def _inspect_xml(
    result: Inspection,
    data: bytes,
    catalog: SchemaCatalog,
    *,
    label: str = "document",
    max_bytes: int,
) -> None:
    root = _inspect_document(result, label, data, catalog, max_bytes)
    if root is None:
        return
    namespace = etree.QName(root).namespace
    if result.kind == "unknown":
        result.kind = {MSGHEAD_NS: "msghead", BKM_NS: "behandlerkrav"}.get(
            namespace or "", "xml"
        )
    try:
        if namespace == MSGHEAD_NS:
            document = parse_msghead(root)
            if etree.QName(document.content).namespace == BKM_NS:
                result.claim = _claim_summary(parse_behandlerkrav(document.content))
        elif namespace == BKM_NS:
            result.claim = _claim_summary(parse_behandlerkrav(root))
    except MessageError as exc:
        where = f" at {exc.location}" if exc.location else ""
        result.worsen(Verdict.INVALID, f"claim cannot be read: {exc.detail}{where}")


def _inspect_document(
    result: Inspection, label: str, data: bytes, catalog: SchemaCatalog, max_bytes: int
) -> etree._Element | None:
    try:
        root = parse_xml(data, max_bytes=max_bytes)
    except MessageError as exc:
        result.worsen(Verdict.UNUSABLE, f"{label}: {exc.detail}")
        return None
    report = catalog.validate(root)
    result.reports.append(report)
    if not report.valid:
        result.worsen(Verdict.INVALID, f"{label}: fails its schema")
    return root


def _claim_summary(krav: BehandlerKrav) -> dict[str, Any]:
    total = sum((b.behandling.sum_refusjon for b in krav.regninger), Decimal("0"))
    return {
        "bills": len(krav.regninger),
        "antall_regninger": krav.antall_regninger,
        "sum_krav_samlet": f"{krav.sum_krav_samlet:.2f}",
        "sum_of_bills": f"{total:.2f}",
        "credits": sum(1 for b in krav.regninger if b.kreditering),
    }
