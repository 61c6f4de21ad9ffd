"""XML namespaces and fixed URIs of ebMS 2.0 and the KITH message standards."""

from __future__ import annotations

from typing import Final

#: SOAP 1.1 envelope (ebMS 2.0 is bound to SOAP 1.1).
SOAP_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
#: ebMS 2.0 message header; the namespace name is the schema's URL.
EB_NS: Final = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

#: KITH Hodemelding (MsgHead) v1.2.
MSGHEAD_NS: Final = "http://www.kith.no/xmlstds/msghead/2006-05-24"
#: KITH Applikasjonskvittering (AppRec) v1.0.
APPREC_NS: Final = "http://www.kith.no/xmlstds/apprec/2004-11-21"
#: KITH Behandlerkravmelding (BehandlerKrav).
BKM_NS: Final = "http://www.kith.no/xmlstds/bkm/2006-12-20"

#: The ebMS service of all MSH signals (Acknowledgment, MessageError, Ping, StatusRequest).
EB_SERVICE_NS: Final = "urn:oasis:names:tc:ebxml-msg:service"
#: ``codeContext`` of the ebMS 2.0 error codes (the schema's default).
EB_ERRORS_CODE_CONTEXT: Final = "urn:oasis:names:tc:ebxml-msg:service:errors"

#: SOAP actor of the receiving party's MSH (AckRequested, Acknowledgment).
ACTOR_TO_PARTY_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
#: SOAP actor of the next MSH on the path (intermediaries).
ACTOR_NEXT_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"
#: SOAP 1.1's own "next" actor.
SOAP_ACTOR_NEXT: Final = "http://schemas.xmlsoap.org/soap/actor/next"

#: Prefixes used in the XPaths we report as error locations and in our own queries.
NSMAP: Final[dict[str, str]] = {
    "SOAP": SOAP_NS,
    "eb": EB_NS,
    "xlink": XLINK_NS,
    "ds": DS_NS,
}
