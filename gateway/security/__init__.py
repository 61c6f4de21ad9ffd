"""Message security: CMS encryption of payload parts, XML signatures, partner certificates.

- ``gateway.security.cms``: decrypt received payload parts (current key, then the previous one
  during a rollover), encrypt what we send to the partner's certificate; bounded ``gunzip``.
- ``gateway.security.signatures``: verify the MsgHead's enveloped signature (AppRec S01/S02) and
  the ebMS 2.0 signature in ``SOAP:Header`` (ebXML ``SecurityFailure``); sign our envelopes.
- ``gateway.security.xmldsig``: our enveloped XML-DSig signing key (``Signer``) and the plain
  enveloped-signature check (``verify``) that the others build on.
- ``gateway.security.certificates``: load certificates, check validity and key usage (and
  revocation, given a ``RevocationCheck``).
- ``gateway.security.signer_certificates``: which of a partner's certificates (several during a
  rollover) a signature is checked against, in what order.
- ``gateway.security.revocation``: CRLs and OCSP for partner certificates, the CRL cache and the
  service that refreshes it (``docs/revocation.md``).

Pure functions and frozen values: no IO beyond loading key files at start, except
``revocation``, which fetches CRLs and asks OCSP responders over HTTP.
"""
