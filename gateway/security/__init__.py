"""Message security: CMS encryption of payload parts, XML signatures, partner certificates.

- ``gateway.security.cms``: decrypt received payload parts (current key, then the previous one
  during a rollover), encrypt what we send to the partner's certificate; bounded ``gunzip``.
- ``gateway.security.signatures``: verify the MsgHead's enveloped signature (AppRec S01/S02) and
  the ebMS 2.0 signature in ``SOAP:Header`` (ebXML ``SecurityFailure``); sign our envelopes.
- ``gateway.security.xmldsig``: our enveloped XML-DSig signing key (``Signer``) and the plain
  enveloped-signature check (``verify``) that the others build on.
- ``gateway.security.certificates``: load certificates, check validity and key usage.

Pure functions and frozen values: no IO beyond loading key files at start.
"""
