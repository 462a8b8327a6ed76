"""Intuit's QuickBooks Online data model (the XSD its SDKs are generated from) as JSON field rules.

The QBO JSON API uses the XSD's element and attribute names as JSON keys, so the XSD tells
which keys an entity may carry, at every depth. This helper reads the schema files in
``../shared/specs/quickbooks/xsd/`` (never copied into the project) and turns every complexType
into the set of JSON field names it allows, following:

- ``xs:extension`` / ``xs:restriction`` bases (``Invoice`` → ``SalesTransaction`` → ``Transaction`` →
  ``IntuitEntity``), so inherited fields such as ``Id``, ``SyncToken`` and ``MetaData`` are allowed;
- nested ``xs:sequence`` / ``xs:choice`` / ``xs:all`` and ``xs:group ref``;
- anonymous complex types declared inline on an element;
- attributes (``domain``, ``sparse``, ``status`` on every entity; ``name``/``type`` on references);
- ``xs:simpleContent`` types (``ReferenceType``, ``MemoRef``), whose text becomes the JSON key ``value``;
- ``xs:element ref`` to an abstract head (``IntuitObject``): every member of its substitution group;
- ``IntuitAnyType`` (``xs:any``): anything goes below it.

Use :func:`assert_fields_conform` on what a sandbox returns or on what LedgerLink sends::

    from tests.qbo_xsd import assert_fields_conform
    assert_fields_conform("Invoice", body["Invoice"])

It raises ``AssertionError`` listing every offending JSON path (``Invoice.Line[0].SalesItemLineDetail.Qtty``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import SHARED_SPECS

XSD_DIR = SHARED_SPECS / "quickbooks" / "xsd"
_XS = "{http://www.w3.org/2001/XMLSchema}"
# The JSON key that carries an xs:simpleContent value (a reference's id, a memo's text).
SIMPLE_CONTENT_KEY = "value"
_ANY = "*"  # marker type: xs:any / IntuitAnyType, anything allowed below


@dataclass
class ComplexType:
    name: str
    fields: dict[str, str | None] = field(default_factory=dict)  # JSON key -> type name (None: leaf)
    bases: list[str] = field(default_factory=list)
    open_content: bool = False  # xs:any inside


def _local(name: str | None) -> str | None:
    """A type name without prefix; None for XML Schema built-ins (``xs:string``), which are leaves."""
    if name is None:
        return None
    if name.startswith("xs:"):
        return None  # a built-in XML Schema type: a leaf
    return name.split(":", 1)[-1]


class XsdModel:
    """Every complexType, group, global element and substitution group of the Intuit schemas."""

    def __init__(self, directory: Path = XSD_DIR) -> None:
        self.types: dict[str, ComplexType] = {}
        self.simple_types: set[str] = set()
        self.groups: dict[str, ET.Element] = {}
        self.elements: dict[str, str | None] = {}  # global element -> its type
        self.substitutions: dict[str, list[str]] = {}  # head element -> member elements
        self._anonymous = 0
        files = sorted(directory.glob("*.xsd"))
        if not files:
            raise FileNotFoundError(f"no Intuit XSD files in {directory}")
        # Intuit's published schema files from the shared specs folder: trusted input.
        roots = [ET.parse(path).getroot() for path in files]  # noqa: S314
        for root in roots:  # groups first: complex types refer to them
            for group in root.findall(f"{_XS}group"):
                self.groups[group.attrib["name"]] = group
        for root in roots:
            for child in root:
                if child.tag == f"{_XS}complexType":
                    self._complex_type(child, child.attrib["name"])
                elif child.tag == f"{_XS}simpleType":
                    self.simple_types.add(child.attrib["name"])
                elif child.tag == f"{_XS}element":
                    name = child.attrib["name"]
                    self.elements[name] = self._element_type(child, name)
                    head = _local(child.attrib.get("substitutionGroup"))
                    if head:
                        self.substitutions.setdefault(head, []).append(name)

    # ---- parsing

    def _element_type(self, element: ET.Element, context: str) -> str | None:
        declared = element.attrib.get("type")
        if declared is not None:
            return _local(declared)
        inline = element.find(f"{_XS}complexType")
        if inline is not None:
            self._anonymous += 1
            name = f"{context}#anonymous{self._anonymous}"
            self._complex_type(inline, name)
            return name
        return None  # inline simple type or no type: a leaf

    def _complex_type(self, node: ET.Element, name: str) -> None:
        complex_type = ComplexType(name)
        self.types[name] = complex_type
        self._collect(node, complex_type)

    def _collect(self, node: ET.Element, into: ComplexType) -> None:
        for child in node:
            tag = child.tag.removeprefix(_XS)
            if tag in ("sequence", "choice", "all", "complexContent"):
                self._collect(child, into)
            elif tag == "simpleContent":
                into.fields[SIMPLE_CONTENT_KEY] = None
                self._collect(child, into)
            elif tag in ("extension", "restriction"):
                base = _local(child.attrib.get("base"))
                if base is not None:
                    into.bases.append(base)
                self._collect(child, into)
            elif tag == "group":
                group = self.groups[_local(child.attrib["ref"]) or ""]
                self._collect(group, into)
            elif tag == "element":
                if "ref" in child.attrib:
                    ref = _local(child.attrib["ref"]) or ""
                    into.fields[ref] = f"@element:{ref}"
                else:
                    element_name = child.attrib["name"]
                    into.fields[element_name] = self._element_type(child, f"{into.name}.{element_name}")
            elif tag == "attribute":
                into.fields[child.attrib["name"]] = None
            elif tag == "any":
                into.open_content = True

    # ---- queries

    def is_open(self, type_name: str) -> bool:
        return any(self.types[name].open_content for name in self._lineage(type_name))

    def fields_of(self, type_name: str) -> dict[str, str | None]:
        """JSON key -> type name for a complexType, inherited fields included."""
        merged: dict[str, str | None] = {}
        for name in reversed(list(self._lineage(type_name))):
            for key, value in self.types[name].fields.items():
                if value is not None and value.startswith("@element:"):
                    head = value.removeprefix("@element:")
                    members = self.substitutions.get(head)
                    if members:
                        for member in members:
                            merged[member] = self.elements.get(member)
                        continue
                    merged[key] = self.elements.get(head)
                else:
                    merged[key] = value
        return merged

    def _lineage(self, type_name: str) -> Iterator[str]:
        seen: set[str] = set()
        pending = [type_name]
        while pending:
            name = pending.pop()
            if name in seen or name not in self.types:
                continue
            seen.add(name)
            yield name
            pending.extend(self.types[name].bases)

    def type_of_entity(self, entity_name: str) -> str:
        """The complexType behind a top-level name (``Invoice`` -> ``Invoice``)."""
        if self.elements.get(entity_name):
            return str(self.elements[entity_name])
        if entity_name in self.types:
            return entity_name
        raise KeyError(f"{entity_name} is neither an element nor a complexType of the Intuit XSD")


@cache
def model() -> XsdModel:
    return XsdModel()


def allowed_fields(entity_name: str) -> frozenset[str]:
    """The JSON keys allowed at the top level of an entity (inherited ones included)."""
    xsd = model()
    return frozenset(xsd.fields_of(xsd.type_of_entity(entity_name)))


def field_violations(entity_name: str, obj: Mapping[str, Any]) -> list[str]:
    """Every JSON path in ``obj`` that the XSD does not define for ``entity_name``."""
    xsd = model()
    problems: list[str] = []
    _walk(xsd, xsd.type_of_entity(entity_name), obj, entity_name, problems)
    return problems


def assert_fields_conform(entity_name: str, obj: Mapping[str, Any]) -> None:
    """Fail, naming each path, if ``obj`` carries a field (at any depth) the XSD does not define."""
    problems = field_violations(entity_name, obj)
    assert not problems, f"fields not defined by the Intuit XSD for {entity_name}: {', '.join(problems)}"


def _walk(xsd: XsdModel, type_name: str | None, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _walk(xsd, type_name, item, f"{path}[{index}]", problems)
        return
    if not isinstance(value, Mapping):
        return  # a leaf value: the XSD's simple types are not checked here, only names
    if type_name is None or type_name == _ANY:
        if type_name is None:
            problems.append(f"{path} (an object where the XSD has a simple value)")
        return
    if type_name not in xsd.types:
        problems.append(f"{path} (an object where the XSD has simple type {type_name})")
        return
    if xsd.is_open(type_name):
        return  # IntuitAnyType: extension point, anything allowed
    fields = xsd.fields_of(type_name)
    for key, child in value.items():
        if key not in fields:
            problems.append(f"{path}.{key}")
            continue
        child_type = fields[key]
        if child_type is None or child_type in xsd.simple_types:
            if isinstance(child, Mapping) or (
                isinstance(child, list) and any(isinstance(item, Mapping) for item in child)
            ):
                problems.append(f"{path}.{key} (an object where the XSD has a simple value)")
            continue
        _walk(xsd, child_type, child, f"{path}.{key}", problems)
