"""XML signatures of received messages, and the ebMS 2.0 signature on what we send.

Two signatures reach us:

- The **enveloped signature of the MsgHead** (application level): one ``ds:Signature``, the last
  child of the root, one Reference ``URI=""`` with the enveloped-signature transform.
  ``verify_msghead`` raises ``SignatureInvalid`` (AppRec S01) or ``CertificateInvalid`` (S02).
- The **ebMS 2.0 signature in ``SOAP:Header``** (ebMS 2.0 §4.1): one Reference ``URI=""`` with
  the enveloped-signature transform, the ebMS XPath transform and C14N, plus one Reference per
  payload part (``URI="cid:…"``, digest over the part's transfer-decoded bytes, no transforms).
  ``verify_ebxml_envelope`` raises ``SecurityFailure`` (ebXML MessageError); ``sign_ebxml_envelope``
  makes the same shape for our Acknowledgment, MessageError and AppRec envelopes.

Both verifiers check against the partner's certificates from the CPA, never against one found in
``KeyInfo``. During a partner's certificate rollover there are several (the old and the new): a
signature by any of them verifies; the one whose key matches the ``KeyInfo`` certificate is tried
first, and a signature none of them made is still invalid (S01 / ``SecurityFailure``). With a
``revocation`` check, the certificate that verified must not be revoked (AppRec S03, or S99 when
its status cannot be established; ``SecurityFailure`` on the ebXML level). Both return only the
tree that was digested: callers must read the message from that return value, not from their own
parse (signature wrapping). The defences, in order: exactly one ``ds:Signature`` in the document,
at the one allowed place; no ``ds:Object``; exactly one Reference to the whole document
(``URI=""``), only known transforms; every payload part covered.

The ebMS XPath transform is supported in exactly the form ebMS 2.0 prescribes (whitespace and
the SOAP prefix may differ): it drops every element addressed to ``actor="…:nextMSH"`` or
``actor="…/soap/actor/next"``, with its subtree. We apply that filter ourselves before handing
the tree to signxml (which skips transforms it does not know); any other XPath is refused.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final
from urllib.parse import quote

from cryptography import x509
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from gateway.ebxml.mime import normalize_content_id
from gateway.ebxml.namespaces import (
    ACTOR_NEXT_MSH,
    DS_NS,
    MSGHEAD_NS,
    SOAP_ACTOR_NEXT,
    SOAP_NS,
)
from gateway.errors import (
    CertificateInvalid,
    MessageError,
    NotXml,
    SecurityFailure,
    SignatureInvalid,
)
from gateway.security.certificates import RevocationCheck
from gateway.security.signer_certificates import (
    Candidates,
    as_certificates,
    certificate_problem,
    within_validity,
)
from gateway.security.xmldsig import Signer, c14n
from gateway.validation.safe_xml import parse_xml

__all__ = [
    "EBMS_XPATH",
    "has_signature",
    "sign_ebxml_envelope",
    "verify_ebxml_envelope",
    "verify_msghead",
]

_DS: Final = f"{{{DS_NS}}}"
_SIGNATURE: Final = _DS + "Signature"
_MSGHEAD: Final = f"{{{MSGHEAD_NS}}}MsgHead"
_ENVELOPE: Final = f"{{{SOAP_NS}}}Envelope"
_HEADER: Final = f"{{{SOAP_NS}}}Header"
_ACTOR: Final = f"{{{SOAP_NS}}}actor"

ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XPATH_FILTER: Final = "http://www.w3.org/TR/1999/REC-xpath-19991116"
_C14N_10: Final = CanonicalizationMethod.CANONICAL_XML_1_0.value
_RSA_SHA256: Final = SignatureMethod.RSA_SHA256.value
_SHA256: Final = DigestAlgorithm.SHA256.value

#: The XPath of ebMS 2.0 §4.1.3, with the SOAP envelope namespace bound to ``SOAP-ENV``.
EBMS_XPATH: Final = (
    f'not(ancestor-or-self::node()[@SOAP-ENV:actor="{ACTOR_NEXT_MSH}"] | '
    f'ancestor-or-self::node()[@SOAP-ENV:actor="{SOAP_ACTOR_NEXT}"])'
)
#: Actors whose header blocks the XPath transform leaves out of the signature.
_UNSIGNED_ACTORS: Final = frozenset({ACTOR_NEXT_MSH, SOAP_ACTOR_NEXT})
_C14N_TRANSFORMS: Final = frozenset(method.value for method in CanonicalizationMethod)
_WHITESPACE: Final = re.compile(r"\s+")
# Characters of a Content-ID kept as they are in a cid: URL (RFC 2392 %-encodes the rest).
_CID_SAFE: Final = "@.!#$&'*+-/=?^_`{|}~"

_BASE_CONFIG: Final = SignatureConfiguration(
    require_x509=True,
    signature_methods=frozenset(
        {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
    ),
    digest_algorithms=frozenset(
        {DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}
    ),
)


def has_signature(document: etree._Element) -> bool:
    """True if ``document`` holds a ``ds:Signature`` anywhere."""
    return next(document.iter(_SIGNATURE), None) is not None


# --- MsgHead -------------------------------------------------------------------------------------


def verify_msghead(
    document: etree._Element | bytes,
    certs: x509.Certificate | Sequence[x509.Certificate],
    at: datetime,
    *,
    required: bool = True,
    revocation: RevocationCheck | None = None,
) -> etree._Element:
    """Verify the enveloped signature of a MsgHead against the sender's certificate(s) ``certs``.

    Returns the MsgHead as it was signed (canonical, without the Signature): process that, and
    nothing else. ``at`` is the moment the certificate must be valid. An unsigned MsgHead raises
    ``SignatureInvalid`` if ``required``, else comes back as parsed. Raises ``SignatureInvalid``
    (S01) for a missing, misplaced, wrapped, tampered or foreign signature, ``CertificateInvalid``
    (S02) if no certificate is usable (expired, not yet valid, not for signing) or the one the
    sender used is not, ``CertificateRevoked`` (S03) / ``RevocationUnknown`` (S99) from
    ``revocation``, and ``NotXml`` for bytes that are not XML.
    """
    root = _isolated(document)
    if root.tag != _MSGHEAD:
        raise SignatureInvalid("Det signerte dokumentet er ikke en MsgHead.")
    signatures = list(root.iter(_SIGNATURE))
    if not signatures:
        if required:
            raise SignatureInvalid("MsgHead er ikke signert; signatur er påkrevd.")
        return root
    children = [child for child in root if isinstance(child.tag, str)]
    if len(signatures) != 1 or children[-1] is not signatures[0]:
        raise SignatureInvalid(
            "MsgHead skal ha nøyaktig én ds:Signature, som siste element i MsgHead."
        )
    return _verify(
        root,
        signatures[0],
        as_certificates(certs),
        at,
        location="./",
        cid_parts={},
        allow_ebms_xpath=False,
        error=SignatureInvalid,
        certificate_error=CertificateInvalid,
        revocation=revocation,
    )


# --- ebXML SOAP envelope -------------------------------------------------------------------------


def verify_ebxml_envelope(
    envelope: bytes,
    attachments: Mapping[str, bytes],
    certs: x509.Certificate | Sequence[x509.Certificate],
    at: datetime,
    *,
    required: bool = True,
    revocation: RevocationCheck | None = None,
) -> etree._Element:
    """Verify the ebMS 2.0 signature in ``SOAP:Header`` against the sender's certificate(s).

    ``attachments`` maps each payload part's Content-ID (with or without ``<>``/``cid:``) to its
    transfer-decoded bytes; each must be covered by a ``cid:`` Reference with a matching digest,
    and every ``cid:`` Reference must name one of them. Returns the envelope as it was signed
    (canonical, without the Signature and without header blocks for ``nextMSH``): parse the
    header from that. An unsigned envelope raises ``SecurityFailure`` if ``required``, else comes
    back as parsed. Every problem, the certificate's and its revocation included, raises
    ``SecurityFailure``.
    """
    try:
        root = parse_xml(bytes(envelope))
    except NotXml as exc:
        raise SecurityFailure(f"Signaturen kan ikke kontrolleres: {exc.detail}") from exc
    if root.tag != _ENVELOPE:
        raise SecurityFailure("Signaturen kan ikke kontrolleres: dette er ikke en SOAP-konvolutt.")
    signatures = list(root.iter(_SIGNATURE))
    if not signatures:
        if required:
            raise SecurityFailure("ebXML-meldingen er ikke signert; signatur er påkrevd.")
        return root
    parent = signatures[0].getparent()
    in_header = parent is not None and parent.tag == _HEADER and parent.getparent() is root
    if len(signatures) != 1 or not in_header:
        raise SecurityFailure("ebXML-meldingen skal ha nøyaktig én ds:Signature, i SOAP:Header.")
    parts: dict[str, bytes] = {}
    for content_id, body in attachments.items():
        parts[normalize_content_id(content_id)] = bytes(body)
    return _verify(
        root,
        signatures[0],
        as_certificates(certs),
        at,
        location=f"./{_HEADER}/",
        cid_parts=parts,
        allow_ebms_xpath=True,
        error=SecurityFailure,
        certificate_error=SecurityFailure,
        revocation=revocation,
    )


def sign_ebxml_envelope(
    envelope: etree._Element | bytes,
    signer: Signer,
    attachments: Mapping[str, bytes],
) -> etree._Element:
    """A signed copy of the SOAP ``envelope``: ``ds:Signature`` appended to ``SOAP:Header``.

    The shape of real ebMS 2.0 messages: C14N 1.0, RSA-SHA256, a Reference ``URI=""`` with the
    enveloped-signature, ebMS XPath and C14N transforms, then one SHA-256 Reference per entry of
    ``attachments`` (Content-ID → the part's bytes before transfer encoding), and our certificate
    in ``KeyInfo``. ``envelope`` is left unchanged. Serialize the result without pretty-printing
    (``gateway.ebxml.envelope.serialize``). Raises ``ValueError`` for a tree that is not a SOAP
    envelope or is signed already.
    """
    root = parse_xml(envelope) if isinstance(envelope, bytes) else copy.deepcopy(envelope)
    if root.tag != _ENVELOPE:
        raise ValueError("not a SOAP envelope")
    header = root.find(_HEADER)
    if header is None:
        raise ValueError("the envelope has no SOAP:Header")
    if has_signature(root):
        raise ValueError("the envelope is signed already")

    # Enveloped transform + XPath filter + C14N 1.0, applied to the tree before the Signature
    # exists: the same bytes a verifier gets after removing it.
    document_c14n = c14n(_without_unsigned_actors(copy.deepcopy(root)))

    signature = etree.SubElement(header, _SIGNATURE, nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, _DS + "SignedInfo")
    etree.SubElement(signed_info, _DS + "CanonicalizationMethod", Algorithm=_C14N_10)
    etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=_RSA_SHA256)
    reference = _reference(signed_info, "", document_c14n)
    transforms = etree.Element(_DS + "Transforms")
    reference.insert(0, transforms)
    etree.SubElement(transforms, _DS + "Transform", Algorithm=ENVELOPED)
    xpath_transform = etree.SubElement(transforms, _DS + "Transform", Algorithm=XPATH_FILTER)
    xpath = etree.SubElement(xpath_transform, _DS + "XPath", nsmap={"SOAP-ENV": SOAP_NS})
    xpath.text = EBMS_XPATH
    etree.SubElement(transforms, _DS + "Transform", Algorithm=_C14N_10)
    for content_id, body in attachments.items():
        cid = normalize_content_id(content_id)
        if not cid:
            raise ValueError("empty Content-ID")
        _reference(signed_info, "cid:" + quote(cid, safe=_CID_SAFE), bytes(body))

    # Inclusive C14N of SignedInfo in place: it takes in the namespaces declared on the envelope.
    value = signer.rsa_sha256(c14n(signed_info))
    etree.SubElement(signature, _DS + "SignatureValue").text = base64.b64encode(value).decode()
    key_info = etree.SubElement(signature, _DS + "KeyInfo")
    x509_data = etree.SubElement(key_info, _DS + "X509Data")
    etree.SubElement(x509_data, _DS + "X509Certificate").text = signer.certificate_b64
    return root


# --- shared --------------------------------------------------------------------------------------


def _verify(
    root: etree._Element,
    signature: etree._Element,
    certs: tuple[x509.Certificate, ...],
    at: datetime,
    *,
    location: str,
    cid_parts: Mapping[str, bytes],
    allow_ebms_xpath: bool,
    error: type[MessageError],
    certificate_error: type[MessageError],
    revocation: RevocationCheck | None,
) -> etree._Element:
    """Check the structure of ``signature``, let signxml check the signature value and digests
    with each agreed certificate in turn, then the certificate that made it (dates, key usage,
    revocation).

    Returns the canonical tree of the ``URI=""`` Reference.
    """
    candidates = Candidates.of(signature, certs, at)
    references, document_ref, filter_actors = _check_structure(
        signature, cid_parts, allow_ebms_xpath, error
    )
    checked = _without_unsigned_actors(copy.deepcopy(root)) if filter_actors else root
    config = replace(_BASE_CONFIG, location=location, expect_references=len(references))
    # Integrity before dates: each agreed certificate is tried at a moment it was valid (signxml
    # refuses an expired one before the digests), so tampering is S01 whatever the dates.
    for candidate in candidates.ordered:
        config = replace(config, verification_time=within_validity(candidate, at))
        try:
            outcome = XMLVerifier().verify(
                checked,
                x509_cert=candidate,
                parser=_parser(),
                expect_config=config,
                uri_resolver=_cid_resolver(cid_parts),
            )
        except InvalidDigest as exc:  # (an InvalidSignature) the key matched, the content did not
            raise error("Innholdet er endret etter at det ble signert.") from exc
        except InvalidSignature:
            continue  # not this certificate's key: try the next one
        except InvalidCertificate as exc:  # pragma: no cover - verified inside its validity
            raise certificate_error("Sertifikatet er ikke gyldig på kontrolltidspunktet.") from exc
        except (InvalidInput, etree.LxmlError, ValueError) as exc:
            raise error(
                "Signaturen har feil form eller bruker en algoritme som ikke er tillatt."
            ) from exc
        problem = candidates.problem_of(candidate)
        if problem is not None:
            raise certificate_problem(problem, certificate_error)
        signed = _signed_tree(outcome, references, document_ref, root, error)
        if revocation is not None:
            try:
                revocation.check(candidate, at)
            except CertificateInvalid as exc:
                raise certificate_problem(exc, certificate_error) from exc
        return signed

    raise candidates.no_match(error, certificate_error)


def _check_structure(
    signature: etree._Element,
    cid_parts: Mapping[str, bytes],
    allow_ebms_xpath: bool,
    error: type[MessageError],
) -> tuple[list[etree._Element], etree._Element, bool]:
    """Refuse what no certificate can make right: ``ds:Object``, other than one SignedInfo,
    other than one ``URI=""`` Reference, unknown transforms, parts not covered or unknown.

    Returns the References, the document Reference, and whether the ebMS XPath is applied.
    """
    if signature.find(_DS + "Object") is not None:
        raise error("Signaturen inneholder ds:Object, som ikke er tillatt her.")
    signed_infos = signature.findall(_DS + "SignedInfo")
    if len(signed_infos) != 1:
        raise error("Signaturen skal ha nøyaktig ett ds:SignedInfo.")
    references = signed_infos[0].findall(_DS + "Reference")
    document_refs = [ref for ref in references if ref.get("URI") == ""]
    if len(document_refs) != 1:
        raise error('Signaturen skal ha nøyaktig én referanse til hele dokumentet (URI="").')
    filter_actors = _check_document_transforms(document_refs[0], allow_ebms_xpath, error)

    covered: set[str] = set()
    for ref in references:
        uri = ref.get("URI")
        if ref is document_refs[0]:
            continue
        if uri is None or uri[:4].lower() != "cid:":
            raise error(f"Signaturen har en referanse som ikke er tillatt: {_shown(uri)}.")
        cid = normalize_content_id(uri)
        if cid not in cid_parts:
            raise error(f"Signaturen refererer til en vedleggsdel som ikke finnes: {_shown(uri)}.")
        if cid in covered:
            raise error(f"Signaturen refererer to ganger til samme del: {_shown(uri)}.")
        if ref.find(_DS + "Transforms") is not None:
            raise error(f"Referansen {_shown(uri)} har transformasjoner, som ikke støttes.")
        covered.add(cid)
    uncovered = sorted(set(cid_parts) - covered)
    if uncovered:
        raise error(f"Vedleggsdelen {_shown(uncovered[0])} er ikke dekket av signaturen.")
    return references, document_refs[0], filter_actors


def _signed_tree(
    outcome: object,
    references: list[etree._Element],
    document_ref: etree._Element,
    root: etree._Element,
    error: type[MessageError],
) -> etree._Element:
    """The tree signxml verified for the document Reference."""
    # signxml returns one result per Reference, in the order of SignedInfo.
    results = outcome if isinstance(outcome, list) else [outcome]
    document_result = results[references.index(document_ref)]
    if not isinstance(document_result, VerifyResult):  # pragma: no cover - signxml's contract
        raise error("Signaturen kan ikke kontrolleres.")
    signed = document_result.signed_xml
    if signed is None or signed.tag != root.tag:  # pragma: no cover - URI="" is the root
        raise error("Det signerte innholdet kan ikke leses.")
    return signed


def _check_document_transforms(
    reference: etree._Element, allow_ebms_xpath: bool, error: type[MessageError]
) -> bool:
    """Refuse unknown transforms on the document Reference; True if the ebMS XPath is there."""
    transforms = reference.findall(f"{_DS}Transforms/{_DS}Transform")
    algorithms = [t.get("Algorithm") for t in transforms]
    if ENVELOPED not in algorithms:
        raise error("Signaturen mangler transformasjonen enveloped-signature.")
    filter_actors = False
    for transform, algorithm in zip(transforms, algorithms, strict=True):
        if algorithm == ENVELOPED or algorithm in _C14N_TRANSFORMS:
            continue
        if algorithm == XPATH_FILTER and allow_ebms_xpath and _is_ebms_xpath(transform):
            filter_actors = True
            continue
        raise error(f"Signaturen bruker en transformasjon som ikke støttes: {_shown(algorithm)}.")
    return filter_actors


def _is_ebms_xpath(transform: etree._Element) -> bool:
    """True if the ``ds:XPath`` of ``transform`` is the ebMS 2.0 one, whatever the SOAP prefix."""
    xpaths = transform.findall(_DS + "XPath")
    if len(xpaths) != 1 or len(xpaths[0]) or xpaths[0].text is None:
        return False
    element = xpaths[0]
    prefixes = [prefix for prefix, uri in element.nsmap.items() if uri == SOAP_NS and prefix]
    text = _WHITESPACE.sub("", element.text or "").replace("'", '"')
    wanted = _WHITESPACE.sub("", EBMS_XPATH)
    return any(text == wanted.replace("SOAP-ENV:", f"{prefix}:") for prefix in prefixes)


def _without_unsigned_actors(root: etree._Element) -> etree._Element:
    """Remove, in place, every element addressed to the next MSH (the ebMS XPath transform)."""
    if root.get(_ACTOR) in _UNSIGNED_ACTORS:
        raise SecurityFailure("Rotelementet er adressert til neste MSH og kan ikke signeres.")
    doomed = [
        element
        for element in root.iterdescendants()
        if isinstance(element.tag, str)
        and element.get(_ACTOR) in _UNSIGNED_ACTORS
        # An element inside one already doomed goes with it.
        and not any(a.get(_ACTOR) in _UNSIGNED_ACTORS for a in element.iterancestors())
    ]
    for element in doomed:
        _remove_keeping_tail(element)
    return root


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element``; its tail text stays (it is not part of the element in XPath terms)."""
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def _reference(signed_info: etree._Element, uri: str, data: bytes) -> etree._Element:
    reference = etree.SubElement(signed_info, _DS + "Reference", URI=uri)
    etree.SubElement(reference, _DS + "DigestMethod", Algorithm=_SHA256)
    digest = hashlib.sha256(data).digest()
    etree.SubElement(reference, _DS + "DigestValue").text = base64.b64encode(digest).decode()
    return reference


def _cid_resolver(parts: Mapping[str, bytes]) -> Callable[[str], bytes | None]:
    def resolve(uri: str) -> bytes | None:
        return parts.get(normalize_content_id(uri)) if uri[:4].lower() == "cid:" else None

    return resolve


def _isolated(document: etree._Element | bytes) -> etree._Element:
    """A root element of its own document: parsed from bytes, or a copy of the caller's tree."""
    if isinstance(document, bytes | bytearray | memoryview):
        return parse_xml(bytes(document))
    return parse_xml(etree.tostring(document, with_tail=False))


def _parser() -> etree.XMLParser:
    # For signxml's own re-parses; lxml parsers must not be shared between threads.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _shown(value: str | None, limit: int = 80) -> str:
    """A sender-supplied value made safe to quote in an error text."""
    if value is None:
        return "(ingen)"
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
