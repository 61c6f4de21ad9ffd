"""Read one ebXML Collaboration-Protocol Agreement (CPPA 2.0, ``cpp-cpa-2_0.xsd``).

A CPA is the contract between two parties' message handlers: who they are (PartyIds), which
roles they play, which Service/Action pairs each side may send and receive, where mail goes,
which certificates sign and encrypt, how often to resend, and how payloads are packaged.

Only what gateway acts on is read, in the shape NAV/Helfo's real CPAs use it
(``../shared/standards/ebxml-ebms2/cpa/nav-qass-35065.xml``):

- every attribute is namespace-qualified (``attributeFormDefault="qualified"``); unqualified
  attributes are accepted too, as some generators write them;
- certificates: the *encryption* certificate of a party is the one named by
  ``CollaborationRole/ApplicationCertificateRef`` (payloads are enveloped as
  ``application/pkcs7-mime`` on the application level); the *signing* certificate is named by
  ``DocExchange/ebXMLSenderBinding/SenderNonRepudiation/SigningCertificateRef`` of the channel a
  binding uses. ``ReceiverDigitalEnvelope`` (ebXML-level encryption) does not occur in the real
  file and is not read. Several end-entity ``X509Certificate`` in one ``KeyInfo`` are all
  kept, in file order (a rollover: a signature by any of them verifies; the first is the one
  ``signing_certificate`` returns); CA certificates beside them are a chain and are skipped;
- the endpoint of an SMTP channel is a ``mailto:`` URI; NAV writes ``mailto://user@host``, so
  slashes after the scheme are dropped;
- reliable messaging (``Retries``, ``RetryInterval``, ``PersistDuration``) is read per
  ``DocExchange`` binding; the real file has Retries 4, RetryInterval PT720M, PersistDuration P4D
  on both sides' SMTP exchange;
- packaging: an action binding's ``packageId`` names a ``Packaging`` whose ``Composite`` holds
  the ebXML header and the payload, wrapped in ``Encapsulation`` layers. In the real file
  BehandlerKrav/OppgjorsMelding is ``application/x-gzip`` inside ``application/pkcs7-mime``
  (enveloped-data): compressed, then encrypted; AppRecs (Svarmelding) are encrypted only;
- ``Status`` is recorded but not enforced: the real test CPA is ``proposed``;
- ``Start``/``End`` without a time zone are taken as UTC (the real file uses ``Z``).

A file that cannot be read this way raises ``CpaInvalid``, naming the file and what is wrong.
"""

from gateway.partners.cpa_model import (
    CPPA_NS,
    ActionBinding,
    CollaborationRole,
    Cpa,
    CpaInvalid,
    CpaParty,
    DeliveryChannel,
    ExchangeBinding,
    Packaging,
    PerMessage,
    ReliableMessaging,
    RetryPolicy,
    mail_address_of,
)
from gateway.partners.cpa_reader import load_cpa, parse_cpa, parse_duration

__all__ = [
    "CPPA_NS",
    "ActionBinding",
    "CollaborationRole",
    "Cpa",
    "CpaInvalid",
    "CpaParty",
    "DeliveryChannel",
    "ExchangeBinding",
    "Packaging",
    "PerMessage",
    "ReliableMessaging",
    "RetryPolicy",
    "load_cpa",
    "mail_address_of",
    "parse_cpa",
    "parse_duration",
]
