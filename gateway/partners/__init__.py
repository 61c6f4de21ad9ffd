"""Trading partners: their ebXML CPAs, the registry of them, and the header checks against them.

- ``gateway.partners.cpa``: parse one CPA file into frozen values (``Cpa``, ``CpaParty``, ...);
  the values live in ``cpa_model``, the parser in ``cpa_reader``.
- ``gateway.partners.rollover``: ``<HER id>.signing.pem`` files, a partner's further signing
  certificates during its certificate rollover.
- ``gateway.partners.registry``: every CPA in a directory, looked up by CPAId or by HER ids.
- ``gateway.partners.checks``: check a received ``eb:MessageHeader`` against the registry.
- ``gateway.partners.addressing``: is a message for us, from whom it may come, of a type we
  take (ebXML header with or without a CPA; the MsgHead's sender and receiver).
- ``gateway.partners.authentication``: its signatures against the partner's certificates.
"""

from gateway.partners.checks import Agreement, check_header
from gateway.partners.cpa import Cpa, CpaInvalid, CpaParty, RetryPolicy, load_cpa, parse_cpa
from gateway.partners.registry import CpaProblem, PartnerRegistry, PartnerRegistryError

__all__ = [
    "Agreement",
    "Cpa",
    "CpaInvalid",
    "CpaParty",
    "CpaProblem",
    "PartnerRegistry",
    "PartnerRegistryError",
    "RetryPolicy",
    "check_header",
    "load_cpa",
    "parse_cpa",
]
