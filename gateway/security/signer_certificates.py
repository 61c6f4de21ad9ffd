"""Which of the partner's certificates a received XML signature is checked against, in what order.

A partner has one signing certificate, or two while it rolls over to a new one (the CPA's
``KeyInfo`` holds both, or the operator added a rollover file: ``gateway.partners.rollover``).
The certificate the sender put in the signature's ``KeyInfo`` is never trusted; it only says
which agreed certificate to try first. Each candidate is checked for use at the moment of the
message (validity, key usage); the signature is tried against every one of them (integrity
before dates), and only the one that made it is then held to its problem
(``Candidates.problem_of``); what the sender is told when none of them made the signature is
decided here too (``Candidates.no_match``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509
from lxml import etree

from gateway.ebxml.namespaces import DS_NS
from gateway.errors import CertificateInvalid, MessageError
from gateway.security.certificates import Purpose, check_certificate, describe

__all__ = [
    "Candidates",
    "as_certificates",
    "certificate_problem",
    "key_info_certificate",
    "within_validity",
]

_DS: Final = f"{{{DS_NS}}}"
_WHITESPACE: Final = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Candidates:
    """The agreed certificates for one signature, the ``KeyInfo`` one first."""

    used: x509.Certificate | None
    """The certificate in the signature's ``KeyInfo``, if it holds a readable one."""
    ordered: tuple[x509.Certificate, ...]
    usable: tuple[x509.Certificate, ...]
    """Those that may verify a signature at the message's moment, in order."""
    refused: tuple[tuple[x509.Certificate, CertificateInvalid], ...]
    """The others, each with why not."""

    @classmethod
    def of(
        cls, signature: etree._Element, certs: tuple[x509.Certificate, ...], at: datetime
    ) -> Candidates:
        """Order ``certs`` for ``signature`` and check each for signing at ``at``."""
        used = key_info_certificate(signature)
        ordered = certs
        if used is not None:
            ordered = tuple(sorted(certs, key=lambda c: (c != used, not _same_key(c, used))))
        usable: list[x509.Certificate] = []
        refused: list[tuple[x509.Certificate, CertificateInvalid]] = []
        for candidate in ordered:
            try:
                check_certificate(candidate, at, Purpose.SIGNING)
            except CertificateInvalid as exc:
                refused.append((candidate, exc))
            else:
                usable.append(candidate)
        return cls(used, ordered, tuple(usable), tuple(refused))

    def problem_of(self, certificate: x509.Certificate) -> CertificateInvalid | None:
        """Why ``certificate`` may not verify a signature at the message's moment, if so."""
        for candidate, problem in self.refused:
            if candidate == certificate:
                return problem
        return None

    def no_match(
        self, error: type[MessageError], certificate_error: type[MessageError]
    ) -> MessageError:
        """What to raise when none of the agreed certificates verified the signature, usable
        at the message's moment or not (each is tried: integrity before dates): ``error``,
        naming the certificate the sender used instead of the agreed ones."""
        return error(_foreign_key_detail(self.used, self.ordered))


def as_certificates(
    certs: x509.Certificate | Sequence[x509.Certificate],
) -> tuple[x509.Certificate, ...]:
    """One certificate or several as a tuple without repeats; ``ValueError`` if empty."""
    found = (certs,) if isinstance(certs, x509.Certificate) else tuple(dict.fromkeys(certs))
    if not found:
        raise ValueError("no certificate to verify the signature with")
    return found


def certificate_problem(
    problem: CertificateInvalid, certificate_error: type[MessageError]
) -> MessageError:
    """``problem`` as the caller's error: itself where that is a ``CertificateInvalid`` (so a
    revoked certificate keeps its own code), else the caller's type with its detail."""
    if isinstance(problem, certificate_error):
        return problem
    return certificate_error(problem.detail)


def within_validity(certificate: x509.Certificate, at: datetime) -> datetime:
    """``at``, moved into ``certificate``'s validity period if it lies outside it: the moment to
    check a signature's integrity with it, whatever its dates (those are checked after)."""
    return min(max(at, certificate.not_valid_before_utc), certificate.not_valid_after_utc)


def key_info_certificate(signature: etree._Element) -> x509.Certificate | None:
    """The certificate the sender put in ``KeyInfo``: only a hint of which key it used."""
    text = signature.findtext(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
    if not text:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode(_WHITESPACE.sub("", text)))
    except ValueError:
        return None


def _same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a.public_key() == b.public_key()


def _foreign_key_detail(used: x509.Certificate | None, certs: tuple[x509.Certificate, ...]) -> str:
    """Name the certificate the sender used, if KeyInfo carries another than the agreed ones."""
    if used is not None and used not in certs:
        agreed = "; ".join(describe(cert) for cert in certs)
        whose = "avsenderens sertifikat" if len(certs) == 1 else "noen av avsenderens sertifikater"
        return (
            f"Signaturverdien stemmer ikke med {whose} i CPA-en ({agreed}); meldingen er signert "
            f"med {describe(used)}."
        )
    return "Signaturverdien stemmer ikke med avsenderens sertifikat."
