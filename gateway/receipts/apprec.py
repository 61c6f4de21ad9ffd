"""Application receipts (AppRec v1.0 or v1.1), bare or in a MsgHead v1.2 carrier.

The health network carries the **bare** ``<AppRec>`` as the payload (the official samples and
the real NAV CPA's ``NAV_message_apprec_v1p0`` part): ``build_apprec`` and ``serialize_apprec``
make it, in the version the partner's CPA declares (``AppRecVersion``; 1.1 differs from 1.0 only
in its namespace and MIGversion). AppRec has no place for ``ds:Signature``: a bare AppRec's
integrity comes from the signed ebXML envelope (its ``cid:`` reference) or, as a file, from a
detached CMS signature beside it (``gateway.security.cms_signed``).

``wrap_in_msghead`` keeps the older carrier: the AppRec as ``MsgHead/Document/RefDoc/Content``
of a MsgHead v1.2 whose last child is the enveloped signature (``gateway.security.xmldsig``);
an explicit per-partner option, not the default.

Everything built here validates against the official AppRec-v1.0.xsd, AppRec-v1.1.xsd and
MsgHead-v1_2.xsd (``tests/test_apprec_conformance.py``).

Texts to senders are Norwegian bokmål. Times are written with seconds precision and no time zone,
as the samples do; aware ``datetime`` values are first converted to Norwegian local time.
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.claims.model import Code, HealthcareProfessional, Ident, Organisation
from gateway.validation.safe_xml import parse_xml

APPREC_NS = "http://www.kith.no/xmlstds/apprec/2004-11-21"
APPREC_V1_1_NS = "http://www.kith.no/xmlstds/apprec/2012-02-15"
MSGHEAD_NS = "http://www.kith.no/xmlstds/msghead/2006-05-24"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

APPREC_MIG_VERSION = "1.0 2004-11-21"
APPREC_V1_1_MIG_VERSION = "v1.1 2012-02-15"
MSGHEAD_MIG_VERSION = "v1.2 2006-05-24"

#: KITH code list 9051, identifier types for organisations.
ORGANISATION_ID_SYSTEM = "2.16.578.1.12.4.1.1.9051"
#: KITH code list 8116, identifier types for persons.
PERSON_ID_SYSTEM = "2.16.578.1.12.4.1.1.8116"

# lxml-stubs type nsmap as Mapping[str, str]; lxml itself takes None for the default namespace.
_MSGHEAD_NSMAP = cast("dict[str, str]", {None: MSGHEAD_NS})

_MH = f"{{{MSGHEAD_NS}}}"

_ORGANISATION_ID_TEXT = {
    "HER": "HER-id",
    "ENH": "Organisasjonsnummeret i Enhetsregister",
    "RSH": "Organisasjonsnummeret i Register for enheter i spesialisthelsetjenesten",
}
_PERSON_ID_TEXT = {
    "HPR": "HPR-nummer",
    "HER": "HER-id",
}
# National identity numbers are never repeated in a receipt: it is stored and logged, and the
# practitioner is identified well enough by HPR/HER.
_NATIONAL_ID_TYPES = frozenset({"FNR", "DNR", "HNR"})

# XSD's (\d+\.?)*\d+ describes the same strings; this form cannot backtrack catastrophically.
_OID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# Characters XML 1.0 cannot carry at all (control characters, surrogates, U+FFFE/U+FFFF).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_LOCAL_TZ = "Europe/Oslo"


class AppRecVersion(enum.Enum):
    """The AppRec versions gateway writes; the partner's CPA says which it reads."""

    V1_0 = "1.0"
    V1_1 = "1.1"

    @property
    def namespace(self) -> str:
        return APPREC_NS if self is AppRecVersion.V1_0 else APPREC_V1_1_NS

    @property
    def mig_version(self) -> str:
        """``MIGversion`` as the official samples of the version write it."""
        return APPREC_MIG_VERSION if self is AppRecVersion.V1_0 else APPREC_V1_1_MIG_VERSION

    @classmethod
    def of_namespace(cls, namespace: str) -> AppRecVersion:
        """The version whose namespace is ``namespace`` (e.g. from a CPA's SimplePart)."""
        for version in cls:
            if version.namespace == namespace:
                return version
        raise ValueError(f"not an AppRec namespace gateway writes: {namespace!r}")


_APPREC_TAGS = frozenset(f"{{{version.namespace}}}AppRec" for version in AppRecVersion)


class AppRecStatus(enum.IntEnum):
    """AppRec ``Status`` (KITH code list 8258)."""

    OK = 1
    AVVIST = 2
    OK_FEIL_I_DELMELDING = 3

    @property
    def text(self) -> str:
        """The code's Norwegian display name (``Status/@DN``)."""
        return _STATUS_TEXT[self]


_STATUS_TEXT = {
    AppRecStatus.OK: "OK",
    AppRecStatus.AVVIST: "Avvist",
    AppRecStatus.OK_FEIL_I_DELMELDING: "OK, feil i delmelding",
}


@dataclass(frozen=True, slots=True)
class AppRecError:
    """One ``Error``: code (``V``), Norwegian text (``DN``), code list OID (``S``), and ``OT``.

    ``ot`` names the part the error concerns, for per-bill errors the bill's RegningNr.
    """

    code: str
    text: str
    code_system: str | None = None
    ot: str | None = None

    def __post_init__(self) -> None:
        if not self.code.strip():
            raise ValueError("AppRec error code must not be empty")
        if self.code_system is not None and not _OID.fullmatch(self.code_system):
            raise ValueError(f"AppRec error code system is not an OID: {self.code_system!r}")

    @property
    def complete(self) -> bool:
        """Whether it names its code system and what it concerns, with a text (``S``, ``V``,
        ``DN`` and ``OT``, as KITH's sample of per-bill errors has them)."""
        return bool(self.code_system and self.text.strip() and self.ot and self.ot.strip())


@dataclass(frozen=True, slots=True)
class AppRec:
    """Everything an AppRec says about one received message."""

    id: str
    gen_date: datetime
    sender: Organisation
    receiver: Organisation
    status: AppRecStatus
    errors: tuple[AppRecError, ...]
    original_msg_type: Code
    original_issue_date: datetime
    original_msg_id: str
    software_name: str | None = "gateway"
    software_version: str | None = None
    version: AppRecVersion = AppRecVersion.V1_0

    def __post_init__(self) -> None:
        # KITH: Error is given exactly when the status is 2 or 3; anything else misleads.
        if self.status is AppRecStatus.OK and self.errors:
            raise ValueError("an AppRec with status OK must not carry errors")
        if self.status is not AppRecStatus.OK and not self.errors:
            raise ValueError(f"an AppRec with status {self.status.name} needs at least one error")


def build_apprec(apprec: AppRec) -> etree._Element:
    """Build the bare ``<AppRec>`` element for ``apprec``, in its ``version``'s namespace."""
    namespace = apprec.version.namespace
    ar = f"{{{namespace}}}"
    root = etree.Element(ar + "AppRec", nsmap=cast("dict[str, str]", {None: namespace}))
    _sub(root, ar + "MsgType", V="APPREC", DN="Applikasjonskvittering")
    _sub(root, ar + "MIGversion", text=apprec.version.mig_version)
    if apprec.software_name is not None:
        _sub(root, ar + "SoftwareName", text=apprec.software_name)
    if apprec.software_version is not None:
        _sub(root, ar + "SoftwareVersion", text=apprec.software_version)
    _sub(root, ar + "GenDate", text=format_datetime(apprec.gen_date))
    _sub(root, ar + "Id", text=apprec.id)
    _party(_sub(root, ar + "Sender"), apprec.sender, ar)
    _party(_sub(root, ar + "Receiver"), apprec.receiver, ar)
    _sub(root, ar + "Status", V=str(int(apprec.status)), DN=apprec.status.text)
    for error in apprec.errors:
        _sub(root, ar + "Error", V=error.code, S=error.code_system, DN=error.text, OT=error.ot)
    original = _sub(root, ar + "OriginalMsgId")
    msg_type = apprec.original_msg_type
    _sub(original, ar + "MsgType", V=msg_type.value, DN=msg_type.text)
    _sub(original, ar + "IssueDate", text=format_datetime(apprec.original_issue_date))
    _sub(original, ar + "Id", text=apprec.original_msg_id)
    return root


def serialize_apprec(apprec: AppRec | etree._Element) -> bytes:
    """A bare AppRec as the file or payload part carries it: UTF-8 with an XML declaration,
    not pretty-printed (a detached signature covers these exact bytes)."""
    element = build_apprec(apprec) if isinstance(apprec, AppRec) else apprec
    if element.tag not in _APPREC_TAGS:
        raise ValueError(f"not an AppRec element: {element.tag!r}")
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def wrap_in_msghead(
    apprec_element: etree._Element,
    *,
    msg_id: str,
    gen_date: datetime,
    sender: Organisation,
    receiver: Organisation,
) -> etree._Element:
    """Put a copy of ``apprec_element`` into an (unsigned) MsgHead v1.2 of type APPREC."""
    if apprec_element.tag not in _APPREC_TAGS:
        raise ValueError(f"not an AppRec element: {apprec_element.tag!r}")
    root = etree.Element(_MH + "MsgHead", nsmap=_MSGHEAD_NSMAP)
    info = _sub(root, _MH + "MsgInfo")
    _sub(info, _MH + "Type", V="APPREC", DN="Applikasjonskvittering")
    _sub(info, _MH + "MIGversion", text=MSGHEAD_MIG_VERSION)
    _sub(info, _MH + "GenDate", text=format_datetime(gen_date))
    _sub(info, _MH + "MsgId", text=msg_id)
    _msghead_organisation(_sub(info, _MH + "Sender"), sender)
    _msghead_organisation(_sub(info, _MH + "Receiver"), receiver)
    ref_doc = _sub(_sub(root, _MH + "Document"), _MH + "RefDoc")
    _sub(ref_doc, _MH + "MsgType", V="XML", DN="XML-instans")
    _sub(ref_doc, _MH + "MimeType", text="text/xml")
    # A copy, so the caller's element is not silently moved out of its own tree.
    _sub(ref_doc, _MH + "Content").append(copy.deepcopy(apprec_element))
    return root


def apprec_from_msghead(signed_msghead_bytes: bytes | etree._Element) -> etree._Element:
    """Return the AppRec element carried in a MsgHead (bytes or parsed).

    This does not check the signature: give it what ``xmldsig.verify`` returned, or verify first.
    """
    if isinstance(signed_msghead_bytes, bytes):
        root = parse_xml(signed_msghead_bytes)
    else:
        root = signed_msghead_bytes
    if root.tag != _MH + "MsgHead":
        raise ValueError(f"not a MsgHead v1.2 document: {root.tag!r}")
    contents = root.findall(f"{_MH}Document/{_MH}RefDoc/{_MH}Content/*")
    found = [element for element in contents if element.tag in _APPREC_TAGS]
    if len(found) != 1:
        raise ValueError(f"expected one AppRec in the MsgHead, found {len(found)}")
    return found[0]


def read_apprec(document: bytes | etree._Element) -> etree._Element:
    """The AppRec of a reply document: the bare ``<AppRec>`` itself (as the network carries
    it), or the one a MsgHead carrier holds. Checks no signature: the bare one's integrity is the
    ebXML envelope's or a detached CMS signature's, the carrier's its own (verify first)."""
    root = parse_xml(document) if isinstance(document, bytes) else document
    if root.tag in _APPREC_TAGS:
        return root
    return apprec_from_msghead(root)


def format_datetime(value: datetime) -> str:
    """``xs:dateTime`` with seconds precision and no zone, in Norwegian local time."""
    if value.tzinfo is not None:
        value = value.astimezone(ZoneInfo(_LOCAL_TZ)).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat(timespec="seconds")


def xml_safe(text: str) -> str:
    """``text`` with characters XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML_CHAR.sub("\ufffd", text)


# --- helpers --------------------------------------------------------------------------------------


def _sub(
    parent: etree._Element, tag: str, *, text: str | None = None, **attributes: str | None
) -> etree._Element:
    """Append a child; ``None`` attributes are left out, all strings made XML-safe."""
    element = etree.SubElement(parent, tag)
    for name, value in attributes.items():
        if value is not None:
            element.set(name, xml_safe(value))
    if text is not None:
        element.text = xml_safe(text)
    return element


def _primary_index(idents: Sequence[Ident]) -> int | None:
    """Position of the organisation's main id: HER, else ENH, else the first one."""
    for wanted in ("HER", "ENH"):
        for index, ident in enumerate(idents):
            if ident.type == wanted:
                return index
    return 0 if idents else None


def _shareable_person_idents(person: HealthcareProfessional) -> list[Ident]:
    """The practitioner's ids without national identity numbers, HPR then HER first."""
    rank = {"HPR": 0, "HER": 1}
    idents = [i for i in person.idents if i.type not in _NATIONAL_ID_TYPES]
    return sorted(idents, key=lambda i: rank.get(i.type, 2))


def _person_name(person: HealthcareProfessional) -> str | None:
    name = " ".join(part for part in (person.given_name, person.family_name) if part)
    return name or None


def _additional_id(parent: etree._Element, ident: Ident, texts: dict[str, str], ar: str) -> None:
    additional = _sub(parent, ar + "AdditionalId")
    _sub(additional, ar + "Id", text=ident.id)
    _sub(additional, ar + "Type", V=ident.type, DN=texts.get(ident.type))


def _party(parent: etree._Element, organisation: Organisation, ar: str) -> None:
    """AppRec ``Sender``/``Receiver`` content: HCP/Inst, with the practitioner as HCPerson.
    ``ar`` is the ``{namespace}`` prefix of the AppRec version being built."""
    inst = _sub(_sub(parent, ar + "HCP"), ar + "Inst")
    _sub(inst, ar + "Name", text=organisation.name)
    primary = _primary_index(organisation.idents)
    if primary is not None:
        ident = organisation.idents[primary]
        _sub(inst, ar + "Id", text=ident.id)
        _sub(inst, ar + "TypeId", V=ident.type, DN=_ORGANISATION_ID_TEXT.get(ident.type))
    for index, ident in enumerate(organisation.idents):
        if index != primary:
            _additional_id(inst, ident, _ORGANISATION_ID_TEXT, ar)
    person = organisation.professional
    if person is None:
        return
    name = _person_name(person)
    idents = _shareable_person_idents(person)
    if name is None and not idents:
        return  # an empty HCPerson says nothing
    person_el = _sub(inst, ar + "HCPerson")
    if name is not None:
        _sub(person_el, ar + "Name", text=name)
    if idents:
        _sub(person_el, ar + "Id", text=idents[0].id)
        _sub(person_el, ar + "TypeId", V=idents[0].type, DN=_PERSON_ID_TEXT.get(idents[0].type))
    for ident in idents[1:]:
        _additional_id(person_el, ident, _PERSON_ID_TEXT, ar)


def _msghead_ident(
    parent: etree._Element, ident: Ident, system: str, texts: dict[str, str]
) -> None:
    element = _sub(parent, _MH + "Ident")
    _sub(element, _MH + "Id", text=ident.id)
    _sub(element, _MH + "TypeId", V=ident.type, DN=texts.get(ident.type), S=system)


def _msghead_organisation(parent: etree._Element, organisation: Organisation) -> None:
    """MsgHead ``Sender``/``Receiver`` content: Organisation with HER and ENH (and other) ids."""
    if not organisation.idents:
        # MsgHead allows an empty Organisation, but nobody could route or check such a message.
        raise ValueError(f"organisation {organisation.name!r} has no identifier")
    org = _sub(parent, _MH + "Organisation")
    _sub(org, _MH + "OrganisationName", text=organisation.name)
    rank = {"HER": 0, "ENH": 1}
    for ident in sorted(organisation.idents, key=lambda i: rank.get(i.type, 2)):
        _msghead_ident(org, ident, ORGANISATION_ID_SYSTEM, _ORGANISATION_ID_TEXT)
    person = organisation.professional
    idents = _shareable_person_idents(person) if person is not None else []
    if person is None or not idents:
        return  # HealthcareProfessional requires at least one Ident
    hcp = _sub(org, _MH + "HealthcareProfessional")
    if person.type is not None:
        _sub(hcp, _MH + "TypeHealthcareProfessional", V=person.type.value, DN=person.type.text)
    if person.family_name:
        _sub(hcp, _MH + "FamilyName", text=person.family_name)
    if person.given_name:
        _sub(hcp, _MH + "GivenName", text=person.given_name)
    for ident in idents:
        _msghead_ident(hcp, ident, PERSON_ID_SYSTEM, _PERSON_ID_TEXT)
