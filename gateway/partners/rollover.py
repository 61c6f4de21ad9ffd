"""Rollover files: further signing certificates the operator adds for a partner beside its CPA.

When a partner renews its signing certificate, messages signed with the new one may arrive
before the CPA naming it is installed. The operator then drops the new certificate into the
partners directory as ``<HER id>.signing.pem`` (PEM, one or more certificates); both the CPA's
certificate and these verify that partner's signatures until the file is removed. The CPA itself
can hold both as well (several ``ds:X509Certificate`` in the ``Certificate``'s ``KeyInfo``).

The files load with the CPAs, all-or-nothing like them (``gateway.partners.registry``): a file
that holds no certificate, or names a HER id no CPA knows (a typo would otherwise go unnoticed),
is a problem of the directory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from cryptography import x509

from gateway.partners.cpa_model import Cpa

__all__ = ["ROLLOVER_SUFFIX", "Rollover", "apply_rollover", "read_rollover"]

#: The end of a rollover file's name; what precedes it is the partner's HER id.
ROLLOVER_SUFFIX: Final = ".signing.pem"
_HER_ID: Final = re.compile(r"[0-9]{1,12}")

#: HER id -> the extra signing certificates for that partner.
Rollover = Mapping[str, tuple[x509.Certificate, ...]]


def read_rollover(paths: Sequence[Path]) -> tuple[Rollover, list[tuple[Path, str]]]:
    """Read rollover files: ``(HER id -> certificates, [(path, problem), ...])``."""
    found: dict[str, tuple[x509.Certificate, ...]] = {}
    problems: list[tuple[Path, str]] = []
    for path in paths:
        her_id = path.name[: -len(ROLLOVER_SUFFIX)]
        if not _HER_ID.fullmatch(her_id):
            problems.append((path, f"a rollover file is named <HER id>{ROLLOVER_SUFFIX}"))
            continue
        try:
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as exc:
            problems.append((path, f"cannot be read: {exc.strerror or exc}"))
            continue
        except ValueError as exc:
            problems.append((path, f"holds no PEM certificate: {exc}"))
            continue
        found[her_id] = tuple(dict.fromkeys(certificates))
    return found, problems


def apply_rollover(cpas: Sequence[Cpa], rollover: Rollover) -> tuple[list[Cpa], list[str]]:
    """``cpas`` with each party's ``rollover_certificates`` set from ``rollover``, and the HER
    ids of ``rollover`` that no CPA has a party for."""
    unused = set(rollover)
    result: list[Cpa] = []
    for cpa in cpas:
        first, second = (
            dataclasses.replace(party, rollover_certificates=rollover[party.her_id])
            if party.her_id is not None and party.her_id in rollover
            else party
            for party in cpa.parties
        )
        unused -= {party.her_id for party in cpa.parties if party.her_id}
        result.append(dataclasses.replace(cpa, parties=(first, second)))
    return result, sorted(unused)
