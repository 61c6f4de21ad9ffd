"""The real NAV CPA (``../shared/standards/ebxml-ebms2/cpa/nav-qass-35065.xml``) with the test
PKI's certificates in place of NAV's and the partner's real ones, everything else as it is:
CPAId, parties, roles, Service/Action bindings, packaging, channels, reliable messaging.

Nobody holds the real certificates' keys, so a test that sends as the partner and answers as NAV
swaps them; the file is read from the standards folder at test time, never copied.
"""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from gateway.ebxml.namespaces import DS_NS
from gateway.partners.cpa import CPPA_NS

__all__ = ["REAL_CPA", "with_test_certificates"]

#: The real CPA, relative to the standards folder.
REAL_CPA = "ebxml-ebms2/cpa/nav-qass-35065.xml"

_TP = f"{{{CPPA_NS}}}"
_DS = f"{{{DS_NS}}}"


def with_test_certificates(
    document: bytes, *, our_her: str, ours: x509.Certificate, theirs: x509.Certificate
) -> bytes:
    """``document`` with every ``Certificate`` of the party ``our_her`` holding ``ours`` and
    every one of the other party ``theirs`` (the one end-entity certificate; the CA chain the
    real file carries beside it is left out)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(document, parser)
    for party in root.iter(f"{_TP}PartyInfo"):
        ids = {(p.get(f"{_TP}type"), (p.text or "").strip()) for p in party.iter(f"{_TP}PartyId")}
        certificate = ours if ("HER", our_her) in ids else theirs
        der = base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")
        for key_info in party.iter(f"{_DS}KeyInfo"):
            found = list(key_info.iter(f"{_DS}X509Certificate"))
            found[0].text = der
            for extra in found[1:]:
                parent = extra.getparent()
                assert parent is not None
                parent.remove(extra)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
