"""Hardened XML parsing and XSD validation against the project's (or official) schemas."""

from gateway.validation.catalog import PROJECT_SCHEMAS_DIR, SchemaCatalog
from gateway.validation.report import SchemaProblem, ValidationReport
from gateway.validation.safe_xml import DEFAULT_MAX_XML_BYTES, parse_xml, redact_identity_numbers

__all__ = [
    "DEFAULT_MAX_XML_BYTES",
    "PROJECT_SCHEMAS_DIR",
    "SchemaCatalog",
    "SchemaProblem",
    "ValidationReport",
    "parse_xml",
    "redact_identity_numbers",
]
