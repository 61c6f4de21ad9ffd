"""Which XSD serves which namespace, compiled once into a single lxml schema.

The project ships its own schemas in ``schemas/``. Operators may point ``extra_dirs`` at a
folder of official XSDs; a file found there takes precedence for its target namespace.
Every chosen file is imported into one in-memory wrapper schema, so that MsgHead's strict
``RefDoc/Content`` wildcard can validate the embedded BehandlerKrav or AppRec in the same pass.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from lxml import etree

import gateway
from gateway.errors import ConfigurationError
from gateway.validation.report import SchemaProblem, ValidationReport
from gateway.validation.safe_xml import DEFAULT_MAX_XML_BYTES, parse_xml, redact_identity_numbers

# The project is installed editable (``pip install -e .``), so the schemas folder sits next to
# the package in the source tree. A non-editable install would need them as package data.
PROJECT_SCHEMAS_DIR = Path(gateway.__file__).resolve().parents[1] / "schemas"

XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"

# Conventional prefixes, only used to make paths and reasons readable.
_PREFIXES: dict[str, str] = {
    "http://www.kith.no/xmlstds/msghead/2006-05-24": "mh",
    "http://www.kith.no/xmlstds/bkm/2006-12-20": "bkm",
    "http://www.kith.no/xmlstds/apprec/2004-11-21": "ar",
    "http://www.kith.no/xmlstds/apprec/2012-02-15": "ar11",
    "http://www.w3.org/2000/09/xmldsig#": "ds",
    "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd": "eb",
    "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    "http://www.w3.org/1999/xlink": "xlink",
    "http://www.w3.org/XML/1998/namespace": "xml",
}

_CLARK_NAME = re.compile(r"\{([^}]*)\}")

#: Schema errors reported per document (the rest are counted): the sender needs the first
#: few, and reporting is then linear however broken a document is.
MAX_REPORTED = 20
#: Longest reason quoted per problem.
_MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class _SchemaFile:
    namespace: str
    path: Path
    imports: tuple[tuple[str, str | None], ...]  # (namespace, schemaLocation)
    includes: tuple[str, ...]  # schemaLocation of xs:include / xs:redefine


def _read_schema_file(path: Path) -> _SchemaFile | None:
    """Read an XSD's target namespace and imports; ``None`` for a schema without one."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except (OSError, etree.XMLSyntaxError) as error:
        raise ConfigurationError(f"cannot read schema {path}: {error}") from error
    if root.tag != f"{{{XSD_NAMESPACE}}}schema":
        raise ConfigurationError(f"{path} is not an XML Schema (root is {root.tag!r})")
    namespace = root.get("targetNamespace")
    if not namespace:
        return None  # a chameleon schema can only be included, never imported by namespace
    imports = tuple(
        (child.get("namespace", ""), child.get("schemaLocation"))
        for child in root.iterchildren(f"{{{XSD_NAMESPACE}}}import")
    )
    includes = tuple(
        child.get("schemaLocation", "")
        for child in root.iterchildren(
            f"{{{XSD_NAMESPACE}}}include", f"{{{XSD_NAMESPACE}}}redefine"
        )
    )
    return _SchemaFile(namespace, path.resolve(), imports, includes)


def _scan(directory: Path) -> list[_SchemaFile]:
    """Every namespaced ``*.xsd`` under ``directory``, in sorted path order."""
    if not directory.is_dir():
        raise ConfigurationError(f"schema directory {directory} does not exist")
    found = (_read_schema_file(path) for path in sorted(directory.rglob("*.xsd")))
    return [schema for schema in found if schema is not None]


def _is_remote(location: str) -> bool:
    scheme = urlsplit(location).scheme.lower()
    return len(scheme) > 1 and scheme != "file"  # one letter is a Windows drive


class SchemaCatalog:
    """Namespace → XSD file, validated through one lazily compiled, cached lxml schema."""

    def __init__(self, sources: Mapping[str, Path]) -> None:
        self._files: dict[str, _SchemaFile] = {}
        for namespace, path in sources.items():
            schema_file = _read_schema_file(Path(path))
            if schema_file is None or schema_file.namespace != namespace:
                raise ConfigurationError(f"{path} does not have targetNamespace {namespace!r}")
            self._files[namespace] = schema_file
        self._schema: etree.XMLSchema | None = None
        self._compile_lock = threading.Lock()
        # An XMLSchema keeps its error_log on the object: one validation at a time.
        self._validate_lock = threading.Lock()

    @classmethod
    def default(cls, extra_dirs: Sequence[Path] = ()) -> SchemaCatalog:
        """The project's schemas, overridden per namespace by XSDs found in ``extra_dirs``.

        An earlier directory wins over a later one; within a directory the first file in sorted
        path order wins.
        """
        chosen: dict[str, Path] = {}
        for directory in reversed([Path(d) for d in extra_dirs]):
            for schema_file in reversed(_scan(directory)):
                chosen[schema_file.namespace] = schema_file.path
        for schema_file in _scan(PROJECT_SCHEMAS_DIR):
            chosen.setdefault(schema_file.namespace, schema_file.path)
        return cls(chosen)

    @property
    def namespaces(self) -> frozenset[str]:
        return frozenset(self._files)

    def source_of(self, namespace: str) -> Path:
        """The XSD file chosen for ``namespace`` (``KeyError`` if unknown)."""
        return self._files[namespace].path

    def __repr__(self) -> str:
        inner = ", ".join(f"{ns!r}: {f.path.name!r}" for ns, f in sorted(self._files.items()))
        return f"SchemaCatalog({{{inner}}})"

    # --- compilation ---------------------------------------------------------------------------

    def _import_order(self) -> list[str]:
        # Dependencies first: libxml2 keeps the first schema imported for a namespace, so the
        # catalog's choice must be imported before any file that imports a sibling copy.
        order: list[str] = []
        state: dict[str, bool] = {}  # False while visiting, True when done

        def visit(namespace: str) -> None:
            if namespace in state:
                return
            state[namespace] = False
            for dependency, _ in self._files[namespace].imports:
                if dependency in self._files:
                    visit(dependency)
            state[namespace] = True
            order.append(namespace)

        for namespace in sorted(self._files):
            visit(namespace)
        return order

    def _check_locations(self) -> None:
        for schema_file in self._files.values():
            for namespace, location in schema_file.imports:
                if location and _is_remote(location) and namespace not in self._files:
                    raise ConfigurationError(
                        f"{schema_file.path} imports {namespace!r} from {location}; "
                        "put a copy of that schema in a schema directory instead"
                    )
            for location in schema_file.includes:
                if _is_remote(location):
                    raise ConfigurationError(
                        f"{schema_file.path} includes {location}; remote schemas are not loaded"
                    )

    def _wrapper(self) -> etree._Element:
        root = etree.Element(f"{{{XSD_NAMESPACE}}}schema", nsmap={"xs": XSD_NAMESPACE})
        for namespace in self._import_order():
            etree.SubElement(
                root,
                f"{{{XSD_NAMESPACE}}}import",
                namespace=namespace,
                schemaLocation=self._files[namespace].path.as_uri(),
            )
        # Reparse through a no-network parser so the schema compiler gets a plain document.
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        return etree.fromstring(etree.tostring(root), parser)

    def compile(self) -> etree.XMLSchema:
        """Compile (once) and return the combined schema; call at startup to fail early."""
        schema = self._schema
        if schema is not None:
            return schema
        with self._compile_lock:
            if self._schema is None:
                self._check_locations()
                try:
                    self._schema = etree.XMLSchema(self._wrapper())
                except etree.XMLSchemaParseError as error:
                    raise ConfigurationError(f"cannot compile the XML schemas: {error}") from error
            return self._schema

    # --- validation ----------------------------------------------------------------------------

    def validate(self, element: etree._Element) -> ValidationReport:
        """Validate ``element`` (normally a document root) against the schema of its namespace."""
        if not isinstance(element.tag, str):
            return ValidationReport("", "", (SchemaProblem(None, "/", "not an element"),))
        qname = etree.QName(element)
        namespace, local = qname.namespace or "", qname.localname
        if namespace not in self._files:
            reason = f"unknown namespace {namespace!r}" if namespace else "unknown namespace (none)"
            return ValidationReport(
                namespace, local, (SchemaProblem(_line(element), f"/{local}", reason),)
            )
        schema = self.compile()
        # A subtree is validated as a document of its own, so that error paths match it.
        target = element if element.getparent() is None else copy.deepcopy(element)
        with self._validate_lock:
            if schema.validate(target):
                return ValidationReport(namespace, local)
            entries: list[Any] = list(_entries(schema.error_log))
        return _problems(target, entries)

    def validate_bytes(
        self, data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES
    ) -> ValidationReport:
        """Parse ``data`` safely (``NotXml`` if it is not acceptable XML) and validate it."""
        return self.validate(parse_xml(data, max_bytes=max_bytes))


def _entries(log: object) -> Iterable[Any]:
    # lxml-stubs declares _ErrorLog opaque; it iterates over _LogEntry objects.
    return cast(Iterable[Any], log)


def _line(element: etree._Element) -> int | None:
    line = element.sourceline
    return line if isinstance(line, int) and line > 0 else None


def _readable_name(tag: str) -> str:
    qname = etree.QName(tag)
    prefix = _PREFIXES.get(qname.namespace or "")
    return f"{prefix}:{qname.localname}" if prefix else qname.localname


def _readable_path(element: etree._Element) -> str:
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        step = _readable_name(str(node.tag))
        parent = node.getparent()
        if parent is not None:
            before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
            if before or next(node.itersiblings(node.tag), None) is not None:
                step += f"[{before + 1}]"
        steps.append(step)
        node = parent
    return "/" + "/".join(reversed(steps))


def _readable_reason(message: str) -> str:
    def prefixed(match: re.Match[str]) -> str:
        prefix = _PREFIXES.get(match.group(1))
        return f"{prefix}:" if prefix else match.group(0)

    # libxml2 quotes offending values verbatim, newlines and indentation included, however
    # long they are: cut first, so an 8 MB value costs nothing to report.
    text = " ".join(message[: _MAX_REASON_CHARS * 2].split())
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 1] + "…"
    return redact_identity_numbers(_CLARK_NAME.sub(prefixed, text))


def _problems(target: etree._Element, entries: list[Any]) -> ValidationReport:
    """The first ``MAX_REPORTED`` errors, with readable paths, and how many more there were.

    Only reached for invalid documents. A path is computed only for a reported error (libxml2
    names the node by an XPath that is resolved once), so the cost is linear in the document
    however many errors it has: a file of 200,000 invalid siblings is reported in a second.
    """
    tree = target.getroottree()
    errors = [entry for entry in entries if entry.level >= etree.ErrorLevels.ERROR]
    problems: list[SchemaProblem] = []
    for entry in errors[:MAX_REPORTED]:
        raw_path = str(entry.path or "")
        element = _element_at(tree, raw_path)
        path = _readable_path(element) if element is not None else raw_path
        line = int(entry.line) if entry.line else None
        problems.append(SchemaProblem(line, path, _readable_reason(str(entry.message))))
    if not problems:
        problems.append(SchemaProblem(None, "/", "document is not valid"))
    more = max(0, len(errors) - MAX_REPORTED)
    namespace, local = etree.QName(target).namespace or "", etree.QName(target).localname
    return ValidationReport(namespace, local, tuple(problems), more=more)


def _element_at(tree: etree._ElementTree, path: str) -> etree._Element | None:
    """The element libxml2's error path names (``/*/*[2]/...``), or None."""
    if not path.startswith("/"):
        return None
    try:
        found = tree.xpath(path)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None
