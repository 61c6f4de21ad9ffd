"""Application receipts: the AppRec (v1.0/1.1, bare as the network carries it, or in a signed
MsgHead carrier for a partner that asks for it), the replies and signals that carry our answers,
how they are packaged per the partner's CPA, and development signing keys (the XML-DSig
primitive is ``gateway.security.xmldsig``, detached CMS ``gateway.security.cms_signed``)."""

from gateway.receipts.apprec import (
    AppRec,
    AppRecError,
    AppRecStatus,
    apprec_from_msghead,
    build_apprec,
    read_apprec,
    serialize_apprec,
    wrap_in_msghead,
)
from gateway.receipts.keys import certificate_info, generate_dev_credentials

__all__ = [
    "AppRec",
    "AppRecError",
    "AppRecStatus",
    "apprec_from_msghead",
    "build_apprec",
    "certificate_info",
    "generate_dev_credentials",
    "read_apprec",
    "serialize_apprec",
    "wrap_in_msghead",
]
