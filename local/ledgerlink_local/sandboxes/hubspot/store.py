"""The HubSpot sandbox's portal: CRM records, their properties and history, unique values,
pipelines, owners, currencies and associations, with change notifications for webhooks.

Every write goes through :meth:`Portal.create` / :meth:`Portal.update`, which validate property
values like HubSpot (see model.py), enforce unique values (a contact's email, custom
``hasUniqueValue`` properties), fill HubSpot's system properties and recompute calculated ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ledgerlink_local.sandboxes.core import SandboxClock
from ledgerlink_local.sandboxes.hubspot.associations import AssociationStore, AssociationTypes
from ledgerlink_local.sandboxes.hubspot.errors import (
    HubSpotError,
    PropertyProblem,
    PropertyValidationError,
    validation_error,
)
from ledgerlink_local.sandboxes.hubspot.model import (
    DEFAULT_PIPELINE_ID,
    INVOICE_STAGE_IDS,
    INVOICES_PIPELINE_ID,
    OBJECT_TYPES,
    CurrencySettings,
    ObjectType,
    Owner,
    Pipeline,
    PropertyCatalog,
    PropertyDefinition,
    PropertyGroup,
    PropertyOption,
    default_owners,
    default_pipelines,
    default_properties,
    instant,
    parse_number,
)

SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "hs_lastmodifieddate")
SOURCE_API = "INTEGRATION"  # changeSource HubSpot reports for writes made through an app's API calls
SOURCE_UI = "CRM_UI"


@dataclass
class HistoryEntry:
    value: str
    timestamp: datetime
    source_type: str
    source_id: str | None = None

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "value": self.value,
            "timestamp": instant(self.timestamp),
            "sourceType": "API" if self.source_type == SOURCE_API else self.source_type,
        }
        if self.source_id:
            body["sourceId"] = self.source_id
        return body


@dataclass
class CrmObject:
    object_type: ObjectType
    id: str
    values: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        return self.values.get(name)

    def describe(
        self,
        catalog: PropertyCatalog,
        requested: list[str] | None = None,
        with_history: list[str] | None = None,
    ) -> dict[str, Any]:
        """The object as HubSpot returns it: requested properties (or the type's default set),
        unset ones as null, unknown names ignored, system properties always present."""
        names = list(requested) if requested else list(self.object_type.default_properties)
        names += [n for n in SYSTEM_PROPERTIES if n not in names]
        if self.object_type.name == "contacts" and "lastmodifieddate" not in names:
            names.append("lastmodifieddate")
        properties = {name: self.values.get(name) for name in sorted(set(names)) if catalog.get(name)}
        body: dict[str, Any] = {
            "id": self.id,
            "properties": properties,
            "createdAt": instant(self.created_at),
            "updatedAt": instant(self.updated_at),
            "archived": self.archived,
        }
        if self.archived_at is not None:
            body["archivedAt"] = instant(self.archived_at)
        if with_history:
            body["propertiesWithHistory"] = {
                name: [entry.describe() for entry in reversed(self.history.get(name, []))]
                for name in with_history
                if catalog.get(name)
            }
        return body


@dataclass(frozen=True)
class ObjectChange:
    """What changed, for the webhook publisher."""

    kind: str  # "creation", "propertyChange", "deletion"
    object_type: str
    object_id: str
    at: datetime
    source: str
    property_name: str | None = None
    property_value: str | None = None


def _numeric_id(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (10**20, value)


class Portal:
    """One HubSpot account with its CRM data."""

    def __init__(
        self,
        portal_id: int,
        clock: SandboxClock,
        *,
        invoices_pipeline_id: str = INVOICES_PIPELINE_ID,
        invoice_stage_ids: Mapping[str, str] = INVOICE_STAGE_IDS,
    ) -> None:
        self.portal_id = portal_id
        self.clock = clock
        now = clock.now()
        self.currencies = CurrencySettings(created_at=now - timedelta(days=1500))
        # HubSpot documents unique-value properties for contacts, companies, deals, tickets and custom
        # objects only; line items and products refuse them unless this admin switch says otherwise
        # (config ``unique_values_on_line_items``), e.g. to stand for a portal set up by an older tool.
        self.unique_values_on_line_items = False
        self.owners: list[Owner] = default_owners(now)
        pipelines = default_pipelines(now, invoices_pipeline_id, invoice_stage_ids)
        self.pipelines: dict[str, dict[str, Pipeline]] = {"deals": {p.id: p for p in pipelines}}
        self.next_pipeline_id = 880100
        self.objects: dict[str, dict[str, CrmObject]] = {t.name: {} for t in OBJECT_TYPES}
        self.next_id: dict[str, int] = {t.name: t.first_id for t in OBJECT_TYPES}
        self.catalogs: dict[str, PropertyCatalog] = {}
        dynamic: dict[str, Callable[[], list[PropertyOption]]] = {
            "pipelines": self._pipeline_options,
            "stages": self._stage_options,
            "owners": self._owner_options,
            "currencies": self._currency_options,
        }
        for object_type in OBJECT_TYPES:
            definitions = {d.name: d for d in default_properties(object_type)}
            groups = {
                object_type.group_name: PropertyGroup(object_type.group_name, object_type.group_label, 0)
            }
            self.catalogs[object_type.name] = PropertyCatalog(object_type, definitions, groups, dynamic)
        self.association_types = AssociationTypes()
        self.associations = AssociationStore(self.association_types)
        self.listeners: list[Callable[[ObjectChange], None]] = []
        # Lookups by unique value (idProperty, unique checks) stay O(1) at backfill sizes.
        self._indexes: dict[tuple[str, str], dict[str, set[str]]] = {}

    # ---- dynamic enumeration options

    def _pipeline_options(self) -> list[PropertyOption]:
        pipelines = sorted(self.live_pipelines("deals"), key=lambda p: p.display_order)
        return [PropertyOption(p.label, p.id, p.display_order) for p in pipelines]

    def _stage_options(self) -> list[PropertyOption]:
        return [
            PropertyOption(s.label, s.id, s.display_order)
            for p in self.live_pipelines("deals")
            for s in p.live_stages()
        ]

    def _owner_options(self) -> list[PropertyOption]:
        return [
            PropertyOption(f"{o.first_name} {o.last_name} ({o.email})", o.id, i)
            for i, o in enumerate(self.owners)
            if not o.archived
        ]

    def _currency_options(self) -> list[PropertyOption]:
        return [PropertyOption(code, code, i) for i, code in enumerate(self.currencies.enabled())]

    # ---- lookups

    def catalog(self, object_type: ObjectType) -> PropertyCatalog:
        return self.catalogs[object_type.name]

    def live_pipelines(self, object_type: str) -> list[Pipeline]:
        return [p for p in self.pipelines.get(object_type, {}).values() if not p.archived]

    def pipeline(self, object_type: str, pipeline_id: str) -> Pipeline | None:
        found = self.pipelines.get(object_type, {}).get(pipeline_id)
        return found if found is not None and not found.archived else None

    def stage_problem(self, stage_id: str, pipeline_id: str | None) -> str | None:
        """None if the stage belongs to the pipeline, otherwise HubSpot's INVALID_OPTION message."""
        pipeline = self.pipeline("deals", pipeline_id or DEFAULT_PIPELINE_ID)
        if pipeline is None:
            return f"{stage_id} is not a valid pipeline stage ID; pipeline {pipeline_id} does not exist."
        if pipeline.stage(stage_id) is not None:
            return None
        stages = ", ".join(s.id for s in pipeline.live_stages())
        return (
            f"{stage_id} is not a valid pipeline stage ID. Valid options are: "
            f"pipelineId={pipeline.id} : [{stages}]"
        )

    def owner(self, owner_id: str) -> Owner | None:
        return next((o for o in self.owners if o.id == owner_id), None)

    def live_objects(self, object_type: ObjectType) -> list[CrmObject]:
        found = [o for o in self.objects[object_type.name].values() if not o.archived]
        return sorted(found, key=lambda o: _numeric_id(o.id))

    def archived_objects(self, object_type: ObjectType) -> list[CrmObject]:
        found = [o for o in self.objects[object_type.name].values() if o.archived]
        return sorted(found, key=lambda o: _numeric_id(o.id))

    def check_id_property(self, object_type: ObjectType, id_property: str | None) -> str | None:
        """Resolve ``idProperty``: HubSpot accepts hs_object_id, a contact's email, or a property
        whose values are unique."""
        if not id_property or id_property == "hs_object_id":
            return None
        catalog = self.catalog(object_type)
        definition = catalog.get(id_property)
        if definition is None:
            raise validation_error(
                f"Property {id_property} does not exist", context={"idProperty": [id_property]}
            )
        is_email = object_type.name == "contacts" and id_property == "email"
        if not (definition.has_unique_value or is_email):
            raise validation_error(
                f"{id_property} is not a unique identifier property for {object_type.name}. "
                "Use hs_object_id or a property with hasUniqueValue.",
                context={"idProperty": [id_property]},
            )
        return id_property

    def get(
        self,
        object_type: ObjectType,
        object_id: str,
        id_property: str | None = None,
        *,
        archived: bool = False,
    ) -> CrmObject | None:
        property_name = self.check_id_property(object_type, id_property)
        if property_name is None:
            found = self.objects[object_type.name].get(object_id)
        else:
            found = self._find_by_value(object_type, property_name, object_id)
        if found is None or found.archived != archived:
            return None
        return found

    def _index(self, type_name: str, name: str) -> dict[str, set[str]]:
        """value -> ids of live records, for a property looked up by value (built on first use)."""
        key = (type_name, name)
        index = self._indexes.get(key)
        if index is None:
            index = {}
            for record in self.objects[type_name].values():
                current = record.values.get(name)
                if current is not None and not record.archived:
                    index.setdefault(fold_unique(name, current), set()).add(record.id)
            self._indexes[key] = index
        return index

    def _find_by_value(self, object_type: ObjectType, name: str, value: str) -> CrmObject | None:
        ids = self._index(object_type.name, name).get(fold_unique(name, value))
        if not ids:
            return None
        return self.objects[object_type.name][min(ids, key=_numeric_id)]

    # ---- writes

    def _validate(
        self,
        object_type: ObjectType,
        raw: Mapping[str, Any],
        existing: CrmObject | None,
        extra_writable: Iterable[str],
    ) -> dict[str, str | None]:
        if not isinstance(raw, Mapping):
            raise validation_error("properties must be an object of property names to values")
        catalog = self.catalog(object_type)
        pipeline_for_stage = None
        if object_type.name == "deals":
            pipeline_for_stage = stringify_or_none(raw.get("pipeline")) or (
                existing.values.get("pipeline") if existing else None
            )
        values = catalog.validate(
            raw,
            stage_check=self.stage_problem if object_type.name == "deals" else None,
            pipeline_for_stage=pipeline_for_stage,
            allow_read_only=extra_writable,
        )
        if object_type.name == "deals" and values.get("pipeline") and "dealstage" not in values and existing:
            # Moving a deal to another pipeline keeps its stage only if that pipeline has it.
            current_stage = existing.values.get("dealstage")
            message = self.stage_problem(current_stage, values["pipeline"]) if current_stage else None
            if message is not None:
                raise PropertyValidationError([PropertyProblem("dealstage", "INVALID_OPTION", message)])
        price = parse_number(values.get("price") or "")
        if object_type.name == "line_items" and price is not None and price < 0:
            # HubSpot: "The price specified within the properties field cannot be negative."
            raise PropertyValidationError(
                [
                    PropertyProblem(
                        "price",
                        "INVALID_NUMBER",
                        f"{values['price']} is negative; a line item's price cannot be.",
                    )
                ]
            )
        if object_type.name == "line_items" and values.get("hs_product_id"):
            product = self.objects["products"].get(str(values["hs_product_id"]))
            if product is None or product.archived:
                raise PropertyValidationError(
                    [
                        PropertyProblem(
                            "hs_product_id",
                            "INVALID_OPTION",
                            f"Product with ID {values['hs_product_id']} does not exist.",
                        )
                    ]
                )
        return values

    def unique_names(self, object_type: ObjectType) -> list[str]:
        """The properties no two records of a type may share: ``hasUniqueValue`` ones, and a
        contact's email."""
        names = self.catalog(object_type).unique_names()
        if object_type.name == "contacts":
            names.append("email")
        return names

    def check_unique(
        self, object_type: ObjectType, values: Mapping[str, str | None], exclude_id: str | None
    ) -> None:
        """A duplicate email (contacts) or unique-property value is refused as a conflict."""
        for name in self.unique_names(object_type):
            value = values.get(name)
            if not value:
                continue
            other = self._find_by_value(object_type, name, value)
            if other is None or other.id == exclude_id:
                continue
            if object_type.name == "contacts" and name == "email":
                raise HubSpotError(409, f"Contact already exists. Existing ID: {other.id}", "CONFLICT")
            raise HubSpotError(
                409,
                f"{object_type.singular.replace('_', ' ').capitalize()} already exists. Existing ID: {other.id}. "
                f'Property "{name}" has unique values and "{value}" is already in use.',
                "CONFLICT",
                context={"propertyName": [name], "id": [other.id]},
            )

    def prepare_create(
        self, object_type: ObjectType, raw: Mapping[str, Any], *, extra_writable: Iterable[str] = ()
    ) -> dict[str, str | None]:
        """Validate a create without storing anything (batch endpoints check every input first)."""
        values = self._validate(object_type, raw, None, extra_writable)
        if object_type.name == "deals" and not values.get("pipeline"):
            values["pipeline"] = DEFAULT_PIPELINE_ID
        self.check_unique(object_type, values, None)
        return values

    def create(
        self,
        object_type: ObjectType,
        raw: Mapping[str, Any],
        *,
        source: str = SOURCE_API,
        source_id: str | None = None,
        created_at: datetime | None = None,
        extra_writable: Iterable[str] = (),
    ) -> CrmObject:
        values = self.prepare_create(object_type, raw, extra_writable=extra_writable)
        now = created_at or self.clock.now()
        object_id = str(self.next_id[object_type.name])
        self.next_id[object_type.name] += 1
        record = CrmObject(object_type, object_id, {}, now, now)
        if object_type.name == "line_items" and values.get("hs_product_id"):
            product = self.objects["products"][str(values["hs_product_id"])]
            for name in ("name", "price", "description", "hs_sku"):
                if name not in values and product.values.get(name) is not None:
                    values[name] = product.values[name]
        explicit_createdate = values.pop("createdate", None)
        system = {
            "hs_object_id": object_id,
            "createdate": explicit_createdate or instant(now),
            **_modification_stamps(object_type, now),
        }
        self._apply(record, {**values, **system}, now, source, source_id)
        self._recalculate(record, now)
        self.objects[object_type.name][object_id] = record
        self._emit(ObjectChange("creation", object_type.name, object_id, now, source))
        for name, value in sorted(values.items()):
            if value is not None:
                self._emit(
                    ObjectChange("propertyChange", object_type.name, object_id, now, source, name, value)
                )
        return record

    def prepare_update(
        self, record: CrmObject, raw: Mapping[str, Any], *, extra_writable: Iterable[str] = ()
    ) -> dict[str, str | None]:
        values = self._validate(record.object_type, raw, record, extra_writable)
        self.check_unique(record.object_type, values, record.id)
        return values

    def update(
        self,
        record: CrmObject,
        raw: Mapping[str, Any],
        *,
        source: str = SOURCE_API,
        source_id: str | None = None,
        extra_writable: Iterable[str] = (),
    ) -> bool:
        """Apply a partial update; returns whether any value changed (HubSpot only then bumps
        the modification date and sends property-change webhooks)."""
        values = self.prepare_update(record, raw, extra_writable=extra_writable)
        changed = {name: value for name, value in values.items() if record.values.get(name) != value}
        if not changed:
            return False
        now = self.clock.now()
        system = _modification_stamps(record.object_type, now)
        self._apply(record, {**changed, **system}, now, source, source_id)
        record.updated_at = now
        self._recalculate(record, now)
        for name, value in sorted(changed.items()):
            self._emit(
                ObjectChange(
                    "propertyChange", record.object_type.name, record.id, now, source, name, value or ""
                )
            )
        return True

    def archive(self, record: CrmObject, *, source: str = SOURCE_API) -> None:
        if record.archived:
            return
        now = self.clock.now()
        record.archived = True
        record.archived_at = now
        record.updated_at = now
        for (type_name, name), index in self._indexes.items():
            current = record.values.get(name)
            if type_name == record.object_type.name and current is not None:
                index.get(fold_unique(name, current), set()).discard(record.id)
        self.associations.remove_object(record.object_type.name, record.id)
        self._emit(ObjectChange("deletion", record.object_type.name, record.id, now, source))

    def _apply(
        self,
        record: CrmObject,
        values: Mapping[str, str | None],
        now: datetime,
        source: str,
        source_id: str | None,
    ) -> None:
        for name, value in values.items():
            index = self._indexes.get((record.object_type.name, name))
            previous = record.values.get(name)
            if index is not None and previous is not None:
                index.get(fold_unique(name, previous), set()).discard(record.id)
            if value is None:
                record.values.pop(name, None)
            else:
                record.values[name] = value
                if index is not None and not record.archived:
                    index.setdefault(fold_unique(name, value), set()).add(record.id)
            record.history.setdefault(name, []).append(HistoryEntry(value or "", now, source, source_id))

    def _recalculate(self, record: CrmObject, now: datetime) -> None:
        """HubSpot's calculated properties the sandbox reproduces."""
        computed: dict[str, str | None] = {}
        if record.object_type.name == "deals":
            amount = parse_number(record.values.get("amount") or "")
            rate = self.currencies.rate(record.values.get("deal_currency_code"))
            computed["amount_in_home_currency"] = None if amount is None else _decimal_text(amount * rate)
            pipeline = self.pipeline("deals", record.values.get("pipeline") or DEFAULT_PIPELINE_ID)
            stage = pipeline.stage(record.values.get("dealstage") or "") if pipeline else None
            if stage is None:
                computed.update(
                    hs_deal_stage_probability=None, hs_is_closed="false", hs_is_closed_won="false"
                )
            else:
                probability = stage.metadata.get("probability", "0")
                closed = stage.metadata.get("isClosed") == "true"
                computed["hs_deal_stage_probability"] = probability
                computed["hs_is_closed"] = "true" if closed else "false"
                won = closed and parse_number(probability) == Decimal(1)
                computed["hs_is_closed_won"] = "true" if won else "false"
        elif record.object_type.name == "line_items":
            quantity = parse_number(record.values.get("quantity") or "")
            price = parse_number(record.values.get("price") or "")
            if quantity is None or price is None:
                computed["amount"] = None
            else:
                net = quantity * price
                discount = parse_number(record.values.get("discount") or "")
                if discount is not None:
                    net -= discount * quantity
                percentage = parse_number(record.values.get("hs_discount_percentage") or "")
                if percentage is not None:
                    net -= net * percentage / Decimal(100)
                computed["amount"] = _decimal_text(net)
        changed = {k: v for k, v in computed.items() if record.values.get(k) != v}
        if changed:
            self._apply(record, changed, now, "CALCULATED", None)

    def _emit(self, change: ObjectChange) -> None:
        for listener in self.listeners:
            listener(change)

    # ---- custom properties and groups

    def add_property(self, object_type: ObjectType, definition: PropertyDefinition) -> None:
        self.catalog(object_type).definitions[definition.name] = definition


def _modification_stamps(object_type: ObjectType, now: datetime) -> dict[str, str | None]:
    """The properties a write stamps with its time (contacts keep a second, older one)."""
    stamps: dict[str, str | None] = {"hs_lastmodifieddate": instant(now)}
    if object_type.name == "contacts":
        stamps["lastmodifieddate"] = instant(now)
    return stamps


def fold_unique(name: str, value: str) -> str:
    """The form in which two unique values are compared: emails whatever their case, others exactly."""
    return value.casefold() if name == "email" else value


def stringify_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return str(value) if not isinstance(value, str) else value


def _decimal_text(value: Decimal) -> str:
    normalised = value.normalize()
    if normalised == normalised.to_integral_value():
        return format(normalised.quantize(Decimal(1)), "f")
    return format(normalised, "f")
