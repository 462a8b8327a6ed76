"""The HubSpot portal's schema: object types, property definitions, pipelines, owners, currencies.

Property values travel as strings, as in HubSpot. :func:`PropertyCatalog.validate` checks a
write the way HubSpot does (unknown name, read-only, number, bool, date, enumeration option,
pipeline stage, owner, portal currency, leading/trailing whitespace) and returns the values to
store, or raises :class:`PropertyValidationError` listing every problem.

Line item ``amount`` (net price) is calculated by HubSpot (its records show source CALCULATED,
"LineItemAmountCalculator"): here quantity x (price - unit discount), less the discount
percentage. Writing it is refused (READ_ONLY_VALUE); whether HubSpot refuses or silently
recalculates is unverified, and refusing is the safer failure for a client.

Unverified (kept plausible): the error codes INVALID_FLOAT, INVALID_BOOLEAN, INVALID_DATE,
INVALID_NUMBER and READ_ONLY_VALUE and their messages; the exact default property sets and labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerlink_local.sandboxes.hubspot.errors import (
    PropertyProblem,
    PropertyValidationError,
    validation_error,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def instant(moment: datetime) -> str:
    """ISO-8601 UTC like Java's ``Instant.toString()`` (HubSpot's format): no fraction when the
    milliseconds are zero, otherwise exactly three digits."""
    moment = moment.astimezone(UTC)
    millis = moment.microsecond // 1000
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- object types


@dataclass(frozen=True)
class ObjectType:
    name: str  # plural API name, e.g. "deals"
    type_id: str  # e.g. "0-3"
    singular: str  # e.g. "deal"
    label: str  # upper-case name used in some messages, e.g. "DEAL"
    association_key: str  # key under "associations" in v3 object reads
    default_properties: tuple[str, ...]
    first_id: int
    group_name: str
    group_label: str


OBJECT_TYPES: tuple[ObjectType, ...] = (
    ObjectType(
        "contacts", "0-1", "contact", "CONTACT", "contacts",
        ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        51_001, "contactinformation", "Contact information",
    ),
    ObjectType(
        "companies", "0-2", "company", "COMPANY", "companies",
        ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        21_001, "companyinformation", "Company information",
    ),
    ObjectType(
        "deals", "0-3", "deal", "DEAL", "deals",
        ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
         "hs_object_id", "pipeline"),
        91_001, "dealinformation", "Deal information",
    ),
    ObjectType(
        "products", "0-7", "product", "PRODUCT", "products",
        ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
        71_001, "productinformation", "Product information",
    ),
    # HubSpot names the association key of line items "line items" (with a space) in v3 reads.
    ObjectType(
        "line_items", "0-8", "line_item", "LINE_ITEM", "line items",
        ("amount", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_product_id", "name",
         "price", "quantity"),
        81_001, "lineiteminformation", "Line item information",
    ),
)  # fmt: skip

_TYPE_ALIASES: dict[str, ObjectType] = {}
for _object_type in OBJECT_TYPES:
    for _alias in (_object_type.name, _object_type.type_id, _object_type.singular):
        _TYPE_ALIASES[_alias] = _object_type
_TYPE_ALIASES["lineitems"] = _TYPE_ALIASES["line_items"]
_TYPE_ALIASES["lineitem"] = _TYPE_ALIASES["line_items"]


def find_object_type(name: str) -> ObjectType | None:
    return _TYPE_ALIASES.get(name.lower())


def object_type(name: str) -> ObjectType:
    """Resolve a path's object type (plural, singular or type id) or answer HubSpot's 400."""
    found = find_object_type(name)
    if found is None:
        raise validation_error(f"Unable to infer object type from: {name}")
    return found


# --------------------------------------------------------------------------- pipelines


@dataclass
class PipelineStage:
    id: str
    label: str
    display_order: int
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": dict(self.metadata),
            "createdAt": instant(self.created_at),
            "updatedAt": instant(self.updated_at),
            "archived": self.archived,
            "id": self.id,
        }


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    stages: list[PipelineStage]
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    def stage(self, stage_id: str) -> PipelineStage | None:
        return next((s for s in self.stages if s.id == stage_id and not s.archived), None)

    def live_stages(self) -> list[PipelineStage]:
        return sorted((s for s in self.stages if not s.archived), key=lambda s: (s.display_order, s.label))

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "displayOrder": self.display_order,
            "id": self.id,
            "stages": [s.describe() for s in self.live_stages()],
            "createdAt": instant(self.created_at),
            "updatedAt": instant(self.updated_at),
            "archived": self.archived,
        }


DEFAULT_PIPELINE_ID = "default"
INVOICES_PIPELINE_ID = "880014"
# The "Invoices" pipeline the demo portal carries so the deal sync can map QBO invoice states.
INVOICE_STAGE_IDS = {
    "open": "880015",
    "overdue": "880016",
    "partially_paid": "880017",
    "paid": "880018",
    "voided": "880019",
}


def default_pipelines(
    now: datetime,
    invoices_pipeline_id: str = INVOICES_PIPELINE_ID,
    invoice_stage_ids: Mapping[str, str] = INVOICE_STAGE_IDS,
) -> list[Pipeline]:
    """HubSpot's default sales pipeline and the demo's "Invoices" pipeline (its ids are the portal's own:
    HubSpot numbers custom pipelines and stages per portal)."""

    def stage(
        stage_id: str, label: str, order: int, probability: str, closed: bool, at: datetime
    ) -> PipelineStage:
        metadata = {"isClosed": "true" if closed else "false", "probability": probability}
        return PipelineStage(stage_id, label, order, metadata, at, at)

    sales = Pipeline(
        DEFAULT_PIPELINE_ID,
        "Sales Pipeline",
        0,
        [
            stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2", False, EPOCH),
            stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4", False, EPOCH),
            stage("presentationscheduled", "Presentation Scheduled", 2, "0.6", False, EPOCH),
            stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8", False, EPOCH),
            stage("contractsent", "Contract Sent", 4, "0.9", False, EPOCH),
            stage("closedwon", "Closed Won", 5, "1.0", True, EPOCH),
            stage("closedlost", "Closed Lost", 6, "0.0", True, EPOCH),
        ],
        EPOCH,  # HubSpot's default pipelines have createdAt = 0
        EPOCH,
    )
    created = now - timedelta(days=700)
    invoices = Pipeline(
        invoices_pipeline_id,
        "Invoices",
        1,
        [
            stage(invoice_stage_ids["open"], "Invoice Open", 0, "0.5", False, created),
            stage(invoice_stage_ids["overdue"], "Invoice Overdue", 1, "0.5", False, created),
            stage(invoice_stage_ids["partially_paid"], "Partially Paid", 2, "0.7", False, created),
            stage(invoice_stage_ids["paid"], "Paid", 3, "1.0", True, created),
            stage(invoice_stage_ids["voided"], "Voided", 4, "0.0", True, created),
        ],
        created,
        created,
    )
    return [sales, invoices]


# --------------------------------------------------------------------------- owners


@dataclass(frozen=True)
class Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    created_at: datetime
    archived: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": instant(self.created_at),
            "updatedAt": instant(self.created_at),
            "archived": self.archived,
            "teams": [],
        }


def default_owners(now: datetime) -> list[Owner]:
    created = now - timedelta(days=1400)
    return [
        Owner("41700101", "maria.alvarez@northwind-demo.example", "Maria", "Alvarez", 8100101, created),
        Owner("41700102", "sam.okafor@northwind-demo.example", "Sam", "Okafor", 8100102, created),
        Owner("41700103", "priya.nair@northwind-demo.example", "Priya", "Nair", 8100103, created),
        Owner(
            "41700199", "former.rep@northwind-demo.example", "Lee", "Former", 8100199, created, archived=True
        ),
    ]


# --------------------------------------------------------------------------- currencies


@dataclass
class CurrencySettings:
    """The portal's company currency and the other currencies it has enabled."""

    company_currency: str = "USD"
    # Units of company currency per unit of the other currency (HubSpot's conversionRate).
    rates: dict[str, Decimal] = field(
        default_factory=lambda: {"EUR": Decimal("1.08"), "CAD": Decimal("0.73")}
    )
    created_at: datetime = EPOCH

    def enabled(self) -> list[str]:
        return [self.company_currency, *sorted(c for c in self.rates if c != self.company_currency)]

    def rate(self, currency: str | None) -> Decimal:
        if not currency or currency == self.company_currency:
            return Decimal(1)
        return self.rates.get(currency, Decimal(1))


# ISO codes HubSpot supports for currency settings (a subset of its list, enough for validation).
SUPPORTED_CURRENCIES: dict[str, str] = {
    "AUD": "Australian Dollar",
    "BRL": "Brazilian Real",
    "CAD": "Canadian Dollar",
    "CHF": "Swiss Franc",
    "CNY": "Chinese Yuan",
    "DKK": "Danish Krone",
    "EUR": "Euro",
    "GBP": "British Pound",
    "HKD": "Hong Kong Dollar",
    "INR": "Indian Rupee",
    "JPY": "Japanese Yen",
    "MXN": "Mexican Peso",
    "NOK": "Norwegian Krone",
    "NZD": "New Zealand Dollar",
    "SEK": "Swedish Krona",
    "SGD": "Singapore Dollar",
    "USD": "US Dollar",
    "ZAR": "South African Rand",
}


# --------------------------------------------------------------------------- property definitions

PROPERTY_TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
FIELD_TYPES = (
    "booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number",
    "phonenumber", "radio", "select", "text", "textarea",
)  # fmt: skip
# Which field types HubSpot accepts for each data type.
FIELD_TYPES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "bool": ("booleancheckbox", "radio", "select", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("checkbox", "radio", "select", "booleancheckbox"),
    "number": ("number", "calculation_equation"),
    "phone_number": ("phonenumber", "text"),
    "string": ("text", "textarea", "html", "file", "phonenumber"),
}
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class PropertyOption:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "description": self.description,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
        }


# Options computed from portal state (pipelines, stages, owners, currencies) at read time.
DynamicOptions = Callable[[], list[PropertyOption]]


@dataclass
class PropertyDefinition:
    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[PropertyOption] = field(default_factory=list)
    dynamic_options: str | None = None  # "pipelines", "stages", "owners", "currencies"
    has_unique_value: bool = False
    hubspot_defined: bool = True
    calculated: bool = False
    read_only_value: bool = False
    display_order: int = -1
    referenced_object_type: str | None = None
    external_options: bool = False
    number_display_hint: str | None = None
    form_field: bool = False
    hidden: bool = False
    created_at: datetime = EPOCH
    updated_at: datetime = EPOCH
    archived: bool = False
    archived_at: datetime | None = None

    def describe(self, options: list[PropertyOption]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "updatedAt": instant(self.updated_at),
            "createdAt": instant(self.created_at),
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": [o.describe() for o in options],
            "displayOrder": self.display_order,
            "calculated": self.calculated,
            "externalOptions": self.external_options,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only_value,
            },
            "formField": self.form_field,
            "dataSensitivity": "non_sensitive",
            "archived": self.archived,
        }
        if self.referenced_object_type:
            body["referencedObjectType"] = self.referenced_object_type
        if self.number_display_hint:
            body["numberDisplayHint"] = self.number_display_hint
        if self.archived_at is not None:
            body["archivedAt"] = instant(self.archived_at)
        return body


@dataclass
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }


def _p(name: str, label: str, type_: str, field_type: str, **extra: Any) -> PropertyDefinition:
    return PropertyDefinition(
        name=name, label=label, type=type_, field_type=field_type, group_name="", **extra
    )


def _options(pairs: Iterable[tuple[str, str]]) -> list[PropertyOption]:
    return [PropertyOption(label, value, order) for order, (value, label) in enumerate(pairs)]


_LIFECYCLE = _options(
    [
        ("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
        ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"),
        ("customer", "Customer"), ("evangelist", "Evangelist"), ("other", "Other"),
    ]
)  # fmt: skip


def _common(object_type: ObjectType) -> list[PropertyDefinition]:
    common = [
        _p("hs_object_id", "Record ID", "number", "number", read_only_value=True, calculated=False),
        _p("createdate", "Create Date", "datetime", "date"),
        _p("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", read_only_value=True),
    ]
    if object_type.name in ("contacts", "companies", "deals"):
        common.append(
            _p(
                "hubspot_owner_id", f"{object_type.singular.capitalize()} owner", "enumeration", "select",
                dynamic_options="owners", referenced_object_type="OWNER", external_options=True,
            )
        )  # fmt: skip
    return common


def _address() -> list[PropertyDefinition]:
    return [
        _p("phone", "Phone Number", "string", "phonenumber"),
        _p("address", "Street Address", "string", "text"),
        _p("city", "City", "string", "text"),
        _p("state", "State/Region", "string", "text"),
        _p("zip", "Postal Code", "string", "text"),
        _p("country", "Country/Region", "string", "text"),
    ]


def default_properties(object_type: ObjectType) -> list[PropertyDefinition]:
    """HubSpot's built-in properties for one object type (the subset LedgerLink touches and more)."""
    specific: list[PropertyDefinition]
    if object_type.name == "deals":
        specific = [
            _p("dealname", "Deal Name", "string", "text"),
            _p("amount", "Amount", "number", "number", number_display_hint="currency"),
            _p("dealstage", "Deal Stage", "enumeration", "radio", dynamic_options="stages"),
            _p("pipeline", "Pipeline", "enumeration", "select", dynamic_options="pipelines"),
            _p("closedate", "Close Date", "datetime", "date"),
            _p("deal_currency_code", "Currency", "enumeration", "select", dynamic_options="currencies"),
            _p("description", "Deal Description", "string", "textarea"),
            _p("dealtype", "Deal Type", "enumeration", "radio",
               options=_options([("newbusiness", "New Business"), ("existingbusiness", "Existing Business")])),
            _p("hs_priority", "Priority", "enumeration", "select",
               options=_options([("low", "Low"), ("medium", "Medium"), ("high", "High")])),
            _p("closed_lost_reason", "Closed Lost Reason", "string", "textarea"),
            _p("closed_won_reason", "Closed Won Reason", "string", "textarea"),
            _p("amount_in_home_currency", "Amount in company currency", "number", "number",
               calculated=True, read_only_value=True),
            _p("hs_deal_stage_probability", "Deal Stage Probability", "number", "number",
               calculated=True, read_only_value=True),
            _p("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", calculated=True,
               read_only_value=True, options=_options([("true", "True"), ("false", "False")])),
            _p("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", calculated=True,
               read_only_value=True, options=_options([("true", "True"), ("false", "False")])),
        ]  # fmt: skip
    elif object_type.name == "companies":
        specific = [
            _p("name", "Company name", "string", "text"),
            _p("domain", "Company Domain Name", "string", "text"),
            _p("website", "Website URL", "string", "text"),
            *_address(),
            _p("address2", "Street Address 2", "string", "text"),
            _p("industry", "Industry", "string", "text"),
            _p("description", "Description", "string", "textarea"),
            _p("numberofemployees", "Number of Employees", "number", "number"),
            _p("annualrevenue", "Annual Revenue", "number", "number", number_display_hint="currency"),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=_LIFECYCLE),
        ]
    elif object_type.name == "contacts":
        specific = [
            _p("email", "Email", "string", "text"),
            _p("firstname", "First Name", "string", "text"),
            _p("lastname", "Last Name", "string", "text"),
            *_address(),
            _p("mobilephone", "Mobile Phone Number", "string", "phonenumber"),
            _p("company", "Company Name", "string", "text"),
            _p("jobtitle", "Job Title", "string", "text"),
            _p("website", "Website URL", "string", "text"),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", options=_LIFECYCLE),
            _p("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only_value=True),
        ]
    elif object_type.name == "line_items":
        specific = [
            _p("name", "Name", "string", "text"),
            _p("description", "Description", "string", "textarea"),
            _p("quantity", "Quantity", "number", "number"),
            _p("price", "Unit price", "number", "number", number_display_hint="currency"),
            _p("amount", "Net price", "number", "number", calculated=True, read_only_value=True),
            _p("discount", "Unit discount", "number", "number"),
            _p("hs_discount_percentage", "Discount Percentage", "number", "number"),
            _p("hs_sku", "SKU", "string", "text"),
            _p("hs_product_id", "Product ID", "number", "number"),
            _p(
                "hs_line_item_currency_code",
                "Currency",
                "enumeration",
                "select",
                dynamic_options="currencies",
            ),
            _p("hs_position_on_quote", "Position on quote", "number", "number"),
            _p("hs_tax_rate_group_id", "Tax rate group", "string", "text"),
        ]
    else:  # products
        specific = [
            _p("name", "Name", "string", "text"),
            _p("description", "Description", "string", "textarea"),
            _p("price", "Unit price", "number", "number", number_display_hint="currency"),
            _p("hs_sku", "SKU", "string", "text"),
            _p("hs_cost_of_goods_sold", "Unit cost", "number", "number"),
        ]
    properties = []
    for order, definition in enumerate([*specific, *_common(object_type)]):
        properties.append(replace(definition, group_name=object_type.group_name, display_order=order))
    return properties


# --------------------------------------------------------------------------- value validation

TRUE_FALSE = ("true", "false")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def parse_datetime_value(raw: str) -> datetime | None:
    """HubSpot accepts epoch milliseconds or ISO-8601 (a date alone means midnight UTC)."""
    text = raw.strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        return EPOCH + timedelta(milliseconds=int(text))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_number(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def stringify(value: Any) -> str | None:
    """A JSON property value as HubSpot stores it (numbers and booleans become strings)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return None


@dataclass
class PropertyCatalog:
    """Every property definition and group of one object type, plus the portal lookups the
    dynamic enumerations need."""

    object_type: ObjectType
    definitions: dict[str, PropertyDefinition]
    groups: dict[str, PropertyGroup]
    dynamic: Mapping[str, DynamicOptions]

    def options(self, definition: PropertyDefinition) -> list[PropertyOption]:
        if definition.dynamic_options:
            return self.dynamic[definition.dynamic_options]()
        return definition.options

    def get(self, name: str) -> PropertyDefinition | None:
        definition = self.definitions.get(name)
        return definition if definition is not None and not definition.archived else None

    def live(self) -> list[PropertyDefinition]:
        return [d for d in self.definitions.values() if not d.archived]

    def unique_names(self) -> list[str]:
        return [d.name for d in self.live() if d.has_unique_value]

    def validate(
        self,
        values: Mapping[str, Any],
        *,
        stage_check: Callable[[str, str | None], str | None] | None = None,
        pipeline_for_stage: str | None = None,
        allow_read_only: Iterable[str] = (),
    ) -> dict[str, str | None]:
        """Check a write; return name -> new value (None clears it). Raises PropertyValidationError."""
        problems: list[PropertyProblem] = []
        clean: dict[str, str | None] = {}
        writable_anyway = set(allow_read_only)
        for name, raw in values.items():
            definition = self.get(name)
            if definition is None:
                problems.append(
                    PropertyProblem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if definition.read_only_value and name not in writable_anyway:
                problems.append(
                    PropertyProblem(
                        name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set."
                    )
                )
                continue
            text = stringify(raw)
            if text is None and raw is not None:
                problems.append(
                    PropertyProblem(name, "INVALID_PROPERTY_VALUE", f"{raw!r} is not a valid property value")
                )
                continue
            if text is None or text == "":
                clean[name] = None  # HubSpot clears a property set to an empty string
                continue
            if definition.type != "string" and text != text.strip():
                problems.append(
                    PropertyProblem(
                        name,
                        "LEADING_TRAILING_WHITESPACE",
                        f'"{text}" includes leading or trailing whitespace.',
                    )
                )
                continue
            problem, normalised = self._check_value(definition, text, stage_check, pipeline_for_stage)
            if problem is not None:
                problems.append(problem)
            else:
                clean[name] = normalised
        if problems:
            raise PropertyValidationError(problems)
        return clean

    def _check_value(
        self,
        definition: PropertyDefinition,
        text: str,
        stage_check: Callable[[str, str | None], str | None] | None,
        pipeline_for_stage: str | None,
    ) -> tuple[PropertyProblem | None, str]:
        name = definition.name
        kind = definition.type
        if name == "email" and self.object_type.name == "contacts" and not EMAIL.fullmatch(text):
            return PropertyProblem(name, "INVALID_EMAIL", f"Email address {text} is invalid"), text
        if kind == "number":
            if parse_number(text) is None:
                return PropertyProblem(name, "INVALID_FLOAT", f"{text} was not a valid number."), text
            return None, text
        if kind == "bool":
            if text.lower() not in TRUE_FALSE:
                return PropertyProblem(name, "INVALID_BOOLEAN", f"{text} was not a valid boolean."), text
            return None, text.lower()
        if kind in ("datetime", "date"):
            moment = parse_datetime_value(text)
            if moment is None:
                return PropertyProblem(name, "INVALID_DATE", f"{text} was not a valid date."), text
            if kind == "date":
                if moment.astimezone(UTC).time() != time():
                    return (
                        PropertyProblem(
                            name,
                            "INVALID_DATE",
                            f"{text} is not at midnight UTC; date properties take a date.",
                        ),
                        text,
                    )
                return None, moment.astimezone(UTC).date().isoformat()
            return None, instant(moment)
        if kind == "enumeration":
            if name == "dealstage" and stage_check is not None:
                message = stage_check(text, pipeline_for_stage)
                if message is not None:
                    return PropertyProblem(name, "INVALID_OPTION", message), text
                return None, text
            if definition.dynamic_options == "owners" and not re.fullmatch(r"\d+", text):
                return (
                    PropertyProblem(
                        name, "INVALID_INTEGER", f"{text} was not a valid integer (for owner ID)."
                    ),
                    text,
                )
            allowed = [o.value for o in self.options(definition)]
            chosen = text.split(";") if definition.field_type == "checkbox" else [text]
            if any(choice not in allowed for choice in chosen):
                return (
                    PropertyProblem(
                        name,
                        "INVALID_OPTION",
                        f"{text} was not one of the allowed options: [{', '.join(allowed)}]",
                    ),
                    text,
                )
            return None, text
        return None, text
