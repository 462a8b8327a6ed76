"""Prepare a HubSpot portal for LedgerLink: the ``ledgerlink`` property group and the custom properties.

:func:`setup_portal` is idempotent: it reads what exists (one call per object type for the groups, one
for the properties) and creates only what is missing, so a second run creates nothing. The catalogue
is :data:`ledgerlink.mapping.properties.CUSTOM_PROPERTIES`; the unique properties (``hasUniqueValue``) are
what the sync's batch upserts key on. Line items have none (HubSpot offers unique values on contacts,
companies, deals, tickets and custom objects only): ``qbo_line_id`` is an ordinary property there.

An existing property that disagrees with the catalogue (another type, or not unique where LedgerLink
needs unique values) is never changed — that could break what someone else built on it — and is
reported as a conflict for a person to resolve. A property that is unique where LedgerLink does not
need it (``qbo_line_id`` on line items, created unique by an earlier version) is no conflict: nothing
LedgerLink writes repeats a line item's key, and HubSpot cannot make a property non-unique anyway. An enumeration that lacks some of LedgerLink's options
gets the missing options added (the ones it has are kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledgerlink.hubspot.client import HubSpotClient
from ledgerlink.mapping.properties import CUSTOM_PROPERTIES, PROPERTY_GROUP, PropertySpec

GROUP_LABEL = "LedgerLink (QuickBooks Online)"


@dataclass
class SetupReport:
    groups_created: list[str] = field(default_factory=list)  # "<object type>.<group>"
    properties_created: list[str] = field(default_factory=list)  # "<object type>.<property>"
    properties_updated: list[str] = field(default_factory=list)
    properties_present: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.groups_created or self.properties_created or self.properties_updated)

    def lines(self) -> list[str]:
        out = [f"created group {name}" for name in self.groups_created]
        out += [f"created property {name}" for name in self.properties_created]
        out += [f"added options to {name}" for name in self.properties_updated]
        out += [f"CONFLICT {text}" for text in self.conflicts]
        out.append(
            f"{len(self.properties_created)} properties created, {len(self.properties_updated)} updated, "
            f"{len(self.properties_present)} already present, {len(self.conflicts)} conflicts"
        )
        return out


def setup_portal(
    client: HubSpotClient, catalogue: Mapping[str, Sequence[PropertySpec]] = CUSTOM_PROPERTIES
) -> SetupReport:
    report = SetupReport()
    for object_type, specs in catalogue.items():
        if PROPERTY_GROUP not in client.property_groups(object_type):
            client.create_property_group(
                object_type, {"name": PROPERTY_GROUP, "label": GROUP_LABEL, "displayOrder": -1}
            )
            report.groups_created.append(f"{object_type}.{PROPERTY_GROUP}")
        existing = client.properties(object_type)
        for spec in specs:
            name = f"{object_type}.{spec.name}"
            current = existing.get(spec.name)
            if current is None:
                client.create_property(object_type, spec.create_body())
                report.properties_created.append(name)
                continue
            conflict = _conflict(spec, current)
            if conflict:
                report.conflicts.append(f"{name}: {conflict}")
                continue
            missing = _missing_options(spec, current)
            if missing:
                client.update_property(object_type, spec.name, {"options": _merged_options(spec, current)})
                report.properties_updated.append(name)
            else:
                report.properties_present.append(name)
    return report


def _conflict(spec: PropertySpec, current: Mapping[str, Any]) -> str | None:
    if current.get("type") != spec.type:
        return f"exists with type {current.get('type')!r}, LedgerLink needs {spec.type!r}"
    if spec.unique and not current.get("hasUniqueValue"):
        return "exists without unique values; LedgerLink upserts by it and needs hasUniqueValue"
    # Unique where the spec is not (an earlier version's qbo_line_id): fine as it is.
    return None


def _missing_options(spec: PropertySpec, current: Mapping[str, Any]) -> list[str]:
    present = {str(option.get("value")) for option in current.get("options") or []}
    return [value for value, _ in spec.options if value not in present]


def _merged_options(spec: PropertySpec, current: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = [
        {
            "label": str(option.get("label") or option.get("value")),
            "value": str(option.get("value")),
            "hidden": bool(option.get("hidden", False)),
            "displayOrder": int(option.get("displayOrder", index)),
        }
        for index, option in enumerate(current.get("options") or [])
    ]
    present = {option["value"] for option in options}
    for value, label in spec.options:
        if value not in present:
            options.append({"label": label, "value": value, "hidden": False, "displayOrder": len(options)})
    return options
