"""The payload of an ebXML message: the part its manifest names, decrypted and unpacked.

Pure functions, shared by the pipeline and ``gateway validate``. Decryption is given as a
function (``gateway.security.cms.decrypt`` with our keys), so this package stays below
``gateway.security``.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Final

from gateway.ebxml.mime import MimePackage, MimePart
from gateway.ebxml.model import EbxmlMessage, ManifestReference
from gateway.errors import FeatureNotSupported, HeaderInconsistent, NotXml, SecurityFailure

__all__ = ["ENCRYPTED", "Decrypt", "extract_payload", "inflate", "is_encrypted", "manifest_part"]

#: The Content-Type of a CMS (PKCS#7) enveloped payload part.
ENCRYPTED: Final = "application/pkcs7-mime"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_HREF: Final = "//eb:Manifest/eb:Reference/@xlink:href"

#: Ciphertext in, plaintext out; raises ``SecurityFailure``.
Decrypt = Callable[[bytes], bytes]


def extract_payload(
    package: MimePackage,
    message: EbxmlMessage,
    *,
    decrypt: Decrypt | None,
    must_be_encrypted: bool,
    max_bytes: int,
) -> bytes:
    """The document of the first manifest reference, decrypted with ``decrypt`` when it is
    CMS-enveloped and unpacked when it is gzip (at most ``max_bytes``).

    ``decrypt`` None: we have no key, so an encrypted payload is ``FeatureNotSupported``.
    ``must_be_encrypted``: the CPA says so, so a plain payload is a ``SecurityFailure``.
    """
    if not message.manifest:
        raise HeaderInconsistent(
            "ebXML-meldingen har ingen Manifest/Reference til en nyttelast.",
            location="//eb:Manifest",
        )
    part = manifest_part(package, message.manifest[0])
    body = part.body
    if is_encrypted(part):
        if decrypt is None:
            raise FeatureNotSupported(
                "Nyttelasten er kryptert (CMS/PKCS#7), men denne mottakeren har ingen "
                "dekrypteringsnøkkel konfigurert.",
                location=_HREF,
            )
        body = decrypt(body)
    elif must_be_encrypted:
        raise SecurityFailure(
            "CPA-en krever kryptert nyttelast (application/pkcs7-mime), men nyttelasten "
            f"kom som {part.content_type}.",
            location=_HREF,
        )
    return inflate(body, max_bytes=max_bytes)


def manifest_part(package: MimePackage, reference: ManifestReference) -> MimePart:
    """The MIME part a manifest reference names; ``HeaderInconsistent`` if there is none."""
    part = package.part(reference.content_id or reference.href)
    if part is None:
        raise HeaderInconsistent(
            f"Manifest peker på {reference.href}, som ikke finnes i MIME-pakken.",
            location=_HREF,
        )
    return part


def is_encrypted(part: MimePart) -> bool:
    return part.content_type == ENCRYPTED


def inflate(body: bytes, *, max_bytes: int) -> bytes:
    """``body`` unpacked if it is gzip, else as it is. Bounded: a small gzip bomb must not fill
    memory, so more than ``max_bytes`` unpacked is ``NotXml``, as is broken gzip."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise NotXml(f"Nyttelasten er gzip, men kan ikke pakkes ut: {exc}") from exc
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise NotXml(f"Utpakket nyttelast er større enn {max_bytes} byte.")
    return data
