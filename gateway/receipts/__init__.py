"""Application receipts: AppRec v1.0 in a signed MsgHead v1.2 carrier, the replies that carry
them, and development signing keys (the XML-DSig primitive is ``gateway.security.xmldsig``)."""

from gateway.receipts.apprec import (
    AppRec,
    AppRecError,
    AppRecStatus,
    apprec_from_msghead,
    build_apprec,
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
    "wrap_in_msghead",
]
