"""Application receipts: AppRec v1.0 in a signed MsgHead v1.2 carrier, and the signing keys."""

from gateway.receipts.apprec import (
    AppRec,
    AppRecError,
    AppRecStatus,
    apprec_from_msghead,
    build_apprec,
    wrap_in_msghead,
)
from gateway.receipts.keys import certificate_info, generate_dev_credentials
from gateway.receipts.signing import Signer, load_signer, serialize, verify

__all__ = [
    "AppRec",
    "AppRecError",
    "AppRecStatus",
    "Signer",
    "apprec_from_msghead",
    "build_apprec",
    "certificate_info",
    "generate_dev_credentials",
    "load_signer",
    "serialize",
    "verify",
    "wrap_in_msghead",
]
