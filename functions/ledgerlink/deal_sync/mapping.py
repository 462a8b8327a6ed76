"""QBO entities → HubSpot upsert inputs, as pure functions (docs/mapping.md has every rule).

- :func:`map_invoice` / :func:`map_estimate`: a deal and its line items;
- :func:`map_customer`: a company, a contact and the identity used by matching;
- :func:`invoice_ids_paid_by`: which invoices a Payment touches (the sync re-reads them);
- :func:`batch_upsert_body`: the ``{"inputs": [...]}`` body of ``POST .../batch/upsert``.

No I/O: the caller supplies the company context (realm, home currency, zone, the portal's
currencies), the stage maps, the current instant and any item SKUs. Every HubSpot property value
is a string (HubSpot's input schema says so); optional values are sent as "" so an upsert also
clears a value that QBO no longer has.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from ledgerlink.dates import (
    company_today,
    hubspot_date,
    hubspot_datetime,
    optional_qbo_date,
    parse_qbo_date,
    parse_qbo_datetime,
    start_of_day,
)
from ledgerlink.deal_sync.errors import TotalMismatch, UnsupportedCurrency
from ledgerlink.deal_sync.matching import CustomerIdentity, company_domain, first_email
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.stages import (
    EstimateStatus,
    InvoiceStatus,
    StageMap,
    estimate_status,
    invoice_status,
)
from ledgerlink.money import (
    allocate,
    format_amount,
    format_number,
    from_minor,
    normalise_currency,
    optional_decimal,
    quantity_step,
    quantum,
    to_decimal,
    to_minor,
)

MAX_BATCH_INPUTS = 100
TAX_LINE_SUFFIX = "tax"


@dataclass(frozen=True)
class CompanyContext:
    """What the mapper must know about one QBO company and the HubSpot portal it syncs to."""

    realm_id: str
    home_currency: str
    time_zone: ZoneInfo
    portal_currencies: frozenset[str]

    def __post_init__(self) -> None:
        if not self.realm_id.strip():
            raise ValueError("realm_id must not be empty")
        object.__setattr__(self, "home_currency", normalise_currency(self.home_currency, entity="company"))
        object.__setattr__(
            self, "portal_currencies", frozenset(code.strip().upper() for code in self.portal_currencies)
        )

    def key(self, qbo_id: str) -> str:
        """The realm-scoped key of a QBO entity: "<realm>:<Id>" (QBO ids are unique per company only)."""
        return f"{self.realm_id}:{qbo_id}"


@dataclass(frozen=True)
class UpsertInput:
    """One input of a HubSpot batch upsert (SimplePublicObjectBatchInputUpsert)."""

    id_property: str
    id: str
    properties: Mapping[str, str]

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "idProperty": self.id_property, "properties": dict(self.properties)}


@dataclass(frozen=True)
class DealMapping:
    """A deal and its complete set of line items for one QBO invoice or estimate.

    ``line_items`` is the whole set: the sync archives the deal's line items whose
    ``qbo_line_id`` is not in it (a deleted QBO line, a tax that went to zero, a void). Each item's
    ``id`` is its ``qbo_line_id``; every ``qbo_line_id`` of this document starts with
    ``line_key_prefix``, which is how the sync tells the line items it wrote for this document from
    the ones a user added to the deal.
    """

    deal: UpsertInput
    line_items: tuple[UpsertInput, ...]
    status: InvoiceStatus | EstimateStatus
    currency: str
    customer_key: str
    line_key_prefix: str
    linked_estimate_keys: tuple[str, ...] = ()

    @property
    def line_item_keys(self) -> frozenset[str]:
        return frozenset(item.id for item in self.line_items)

    def owns_line(self, qbo_line_id: str) -> bool:
        """Whether a line item's ``qbo_line_id`` names a line of this document (present or removed)."""
        return bool(qbo_line_id) and qbo_line_id.startswith(self.line_key_prefix)


@dataclass(frozen=True)
class CustomerMapping:
    identity: CustomerIdentity
    company: UpsertInput
    contact: UpsertInput | None  # None without a usable email (HubSpot keys contacts by email)
    parent_key: str | None = None  # sub-customer (job): the parent customer's key
    notes: tuple[str, ...] = field(default=())


class _DocumentKind(StrEnum):
    INVOICE = "Invoice"
    ESTIMATE = "Estimate"


def map_invoice(
    invoice: Mapping[str, Any],
    context: CompanyContext,
    stages: StageMap,
    *,
    now: datetime,
    item_skus: Mapping[str, str] | None = None,
    void_operation_seen: bool = False,
) -> DealMapping:
    """The deal (upsert by ``qbo_invoice_id``) and line items of a QBO Invoice."""
    doc = _Document.read(invoice, _DocumentKind.INVOICE, context)
    today = company_today(now, context.time_zone)
    balance = to_decimal(_required(invoice, "Balance", doc.label), entity=doc.label, field="Balance")
    due_date = optional_qbo_date(invoice.get("DueDate"), entity=doc.label, field="DueDate")
    status = invoice_status(
        entity=doc.label,
        total=doc.total,
        balance=balance,
        due_date=due_date,
        private_note=invoice.get("PrivateNote"),
        today=today,
        void_operation_seen=void_operation_seen,
    )
    voided = status is InvoiceStatus.VOIDED
    # A void zeroes every amount in QBO; the deal keeps its identity and goes to the voided stage
    # with no line items, so its amount (0) and its line items still agree.
    lines, discount_total = (
        ((), Decimal(0)) if voided else _line_items(doc, invoice, context, item_skus or {})
    )
    stage = stages.for_status(status)
    properties = doc.common_properties(context)
    properties.update(
        {
            prop.QBO_INVOICE_ID: doc.key,
            prop.QBO_DUE_DATE: hubspot_date(due_date) if due_date else "",
            prop.QBO_BALANCE: format_amount(balance, doc.currency, entity=doc.label, field="Balance"),
            prop.QBO_STATUS: status.value,
            prop.QBO_DISCOUNT_AMOUNT: doc.money(discount_total, "DiscountLineDetail"),
            "closedate": hubspot_datetime(start_of_day(doc.txn_date, context.time_zone)),
            "pipeline": stage.pipeline,
            "dealstage": stage.stage,
        }
    )
    return DealMapping(
        deal=UpsertInput(prop.QBO_INVOICE_ID, doc.key, properties),
        line_items=lines,
        status=status,
        currency=doc.currency,
        customer_key=doc.customer_key,
        line_key_prefix=doc.line_key(""),
        linked_estimate_keys=tuple(
            context.key(str(linked["TxnId"]))
            for linked in invoice.get("LinkedTxn") or ()
            if linked.get("TxnType") == "Estimate" and linked.get("TxnId") is not None
        ),
    )


def map_estimate(
    estimate: Mapping[str, Any],
    context: CompanyContext,
    stages: StageMap,
    *,
    now: datetime,
    item_skus: Mapping[str, str] | None = None,
) -> DealMapping:
    """The deal (upsert by ``qbo_estimate_id``) and line items of a QBO Estimate."""
    doc = _Document.read(estimate, _DocumentKind.ESTIMATE, context)
    today = company_today(now, context.time_zone)
    expiration = optional_qbo_date(estimate.get("ExpirationDate"), entity=doc.label, field="ExpirationDate")
    status = estimate_status(
        entity=doc.label, txn_status=estimate.get("TxnStatus"), expiration_date=expiration, today=today
    )
    lines, discount_total = _line_items(doc, estimate, context, item_skus or {})
    stage = stages.for_status(status)
    properties = doc.common_properties(context)
    properties.update(
        {
            prop.QBO_ESTIMATE_ID: doc.key,
            prop.QBO_EXPIRATION_DATE: hubspot_date(expiration) if expiration else "",
            prop.QBO_STATUS: status.value,
            prop.QBO_DISCOUNT_AMOUNT: doc.money(discount_total, "DiscountLineDetail"),
            # An estimate's deal is expected to close when the estimate expires.
            "closedate": hubspot_datetime(start_of_day(expiration or doc.txn_date, context.time_zone)),
            "pipeline": stage.pipeline,
            "dealstage": stage.stage,
        }
    )
    return DealMapping(
        deal=UpsertInput(prop.QBO_ESTIMATE_ID, doc.key, properties),
        line_items=lines,
        status=status,
        currency=doc.currency,
        customer_key=doc.customer_key,
        line_key_prefix=doc.line_key(""),
    )


def map_customer(customer: Mapping[str, Any], context: CompanyContext) -> CustomerMapping:
    """Company (upsert by ``qbo_customer_id``) and contact (upsert by ``email``) of a QBO Customer."""
    qbo_id = str(customer.get("Id") or "").strip()
    if not qbo_id:
        raise MappingError("Customer", "Id", "is required")
    label = f"Customer {qbo_id}"
    key = context.key(qbo_id)
    display_name = _text(customer.get("DisplayName"))
    company_name = _text(customer.get("CompanyName")) or display_name
    if not company_name:
        raise MappingError(label, "DisplayName", "is required when CompanyName is empty")
    raw_email = _text(_nested(customer, "PrimaryEmailAddr", "Address"))
    email = first_email(raw_email)
    website = _text(_nested(customer, "WebAddr", "URI"))
    domain = company_domain(website, email)
    phone = _text(_nested(customer, "PrimaryPhone", "FreeFormNumber")) or _text(
        _nested(customer, "Mobile", "FreeFormNumber")
    )
    address = _address(customer.get("BillAddr") or {})
    created_raw = _nested(customer, "MetaData", "CreateTime")
    created_at = (
        parse_qbo_datetime(created_raw, context.time_zone, entity=label, field="MetaData.CreateTime")
        if created_raw
        else None
    )
    notes: list[str] = []
    if raw_email and not email:
        notes.append("PrimaryEmailAddr.Address holds no valid email address; no contact is mapped")

    company_properties = {
        "name": company_name,
        "domain": domain or "",
        "website": website,
        "phone": phone,
        **address,
        prop.QBO_CUSTOMER_ID: key,
        prop.QBO_REALM_ID: context.realm_id,
    }
    contact = None
    if email:
        contact = UpsertInput(
            "email",
            email,
            {
                "email": email,
                "firstname": _text(customer.get("GivenName")),
                "lastname": _text(customer.get("FamilyName")),
                "phone": phone,
                "company": company_name,
                "address": address["address"],
                "city": address["city"],
                "state": address["state"],
                "zip": address["zip"],
                "country": address["country"],
                prop.QBO_CUSTOMER_ID: key,
                prop.QBO_REALM_ID: context.realm_id,
            },
        )
    parent_id = _nested(customer, "ParentRef", "value")
    return CustomerMapping(
        identity=CustomerIdentity(
            key=key, qbo_id=qbo_id, name=company_name, email=email, domain=domain, created_at=created_at
        ),
        company=UpsertInput(prop.QBO_CUSTOMER_ID, key, company_properties),
        contact=contact,
        parent_key=context.key(str(parent_id)) if customer.get("Job") and parent_id else None,
        notes=tuple(notes),
    )


def invoice_ids_paid_by(payment: Mapping[str, Any]) -> tuple[str, ...]:
    """QBO Ids of the invoices a Payment is applied to (Line[].LinkedTxn with TxnType Invoice), sorted."""
    ids = {
        str(linked["TxnId"])
        for line in payment.get("Line") or ()
        for linked in line.get("LinkedTxn") or ()
        if linked.get("TxnType") == "Invoice" and linked.get("TxnId") is not None
    }
    return tuple(sorted(ids, key=lambda value: (len(value), value)))


def batch_upsert_body(inputs: Sequence[UpsertInput]) -> dict[str, Any]:
    """The body of ``POST /crm/v3/objects/{type}/batch/upsert``.

    Its schema is BatchInputSimplePublicObjectBatchInputUpsert in HubSpot's CRM object specs.
    """
    if not inputs:
        raise ValueError("a batch upsert needs at least one input")
    if len(inputs) > MAX_BATCH_INPUTS:
        raise ValueError(f"a batch upsert takes at most {MAX_BATCH_INPUTS} inputs, got {len(inputs)}")
    return {"inputs": [item.body() for item in inputs]}


def batches(inputs: Sequence[UpsertInput], size: int = MAX_BATCH_INPUTS) -> Iterator[list[UpsertInput]]:
    for start in range(0, len(inputs), size):
        yield list(inputs[start : start + size])


# --- documents --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Document:
    kind: _DocumentKind
    realm_id: str
    qbo_id: str
    key: str
    label: str  # "Invoice 130": names the entity in every error
    doc_number: str
    txn_date: date
    currency: str
    total: Decimal
    tax: Decimal
    customer_key: str
    customer_name: str
    last_updated: datetime | None

    @classmethod
    def read(cls, entity: Mapping[str, Any], kind: _DocumentKind, context: CompanyContext) -> _Document:
        qbo_id = str(entity.get("Id") or "").strip()
        if not qbo_id:
            raise MappingError(kind.value, "Id", "is required")
        label = f"{kind.value} {qbo_id}"
        currency = normalise_currency(
            _nested(entity, "CurrencyRef", "value") or context.home_currency, entity=label
        )
        if currency not in context.portal_currencies:
            raise UnsupportedCurrency(label, currency, context.portal_currencies)
        total = to_decimal(_required(entity, "TotalAmt", label), entity=label, field="TotalAmt")
        if total < 0:
            raise MappingError(label, "TotalAmt", f"must not be negative, got {total}")
        format_amount(total, currency, entity=label, field="TotalAmt")
        tax = optional_decimal(
            _nested(entity, "TxnTaxDetail", "TotalTax"), entity=label, field="TxnTaxDetail.TotalTax"
        )
        customer_id = _nested(entity, "CustomerRef", "value")
        if customer_id in (None, ""):
            raise MappingError(label, "CustomerRef.value", "is required")
        last_updated_raw = _nested(entity, "MetaData", "LastUpdatedTime")
        return cls(
            kind=kind,
            realm_id=context.realm_id,
            qbo_id=qbo_id,
            key=context.key(qbo_id),
            label=label,
            doc_number=_text(entity.get("DocNumber")),
            txn_date=parse_qbo_date(_required(entity, "TxnDate", label), entity=label, field="TxnDate"),
            currency=currency,
            total=total,
            tax=tax or Decimal(0),
            customer_key=context.key(str(customer_id)),
            customer_name=_text(_nested(entity, "CustomerRef", "name")) or f"Customer {customer_id}",
            last_updated=(
                parse_qbo_datetime(
                    last_updated_raw, context.time_zone, entity=label, field="MetaData.LastUpdatedTime"
                )
                if last_updated_raw
                else None
            ),
        )

    @property
    def deal_name(self) -> str:
        number = self.doc_number or f"(no number, id {self.qbo_id})"
        return f"{self.kind.value} {number} — {self.customer_name}"

    def money(self, amount: Decimal, field_name: str) -> str:
        return format_amount(amount, self.currency, entity=self.label, field=field_name)

    def common_properties(self, context: CompanyContext) -> dict[str, str]:
        return {
            "dealname": self.deal_name,
            "amount": self.money(self.total, "TotalAmt"),
            "deal_currency_code": self.currency,
            prop.QBO_REALM_ID: context.realm_id,
            prop.QBO_DOC_NUMBER: self.doc_number,
            prop.QBO_CUSTOMER_ID: self.customer_key,
            prop.QBO_TXN_DATE: hubspot_date(self.txn_date),
            prop.QBO_TAX_AMOUNT: self.money(self.tax, "TxnTaxDetail.TotalTax"),
            prop.QBO_LAST_UPDATED: hubspot_datetime(self.last_updated) if self.last_updated else "",
        }

    def line_key(self, line_id: str) -> str:
        # Invoice lines keep the short "<realm>:<invoiceId>:<LineId>"; estimate lines say so, because
        # QBO does not promise that an estimate and an invoice never share an Id.
        if self.kind is _DocumentKind.INVOICE:
            return f"{self.key}:{line_id}"
        return f"{self.realm_id}:estimate-{self.qbo_id}:{line_id}"


# --- line items -------------------------------------------------------------------------------


@dataclass
class _SalesLine:
    key: str
    path: str
    name: str
    description: str
    item_id: str
    qbo_quantity: Decimal | None
    qbo_unit_price: Decimal | None
    amount: Decimal  # QBO Line.Amount, before the document-level discount
    tax_code: str
    service_date: date | None
    quantity: Decimal  # what HubSpot gets; price * quantity == amount exactly
    price: Decimal
    discount_minor: int = 0  # this line's share of the document-level discounts

    def re_express_as_single_unit(self) -> None:
        """Quantity 1 at the line amount: always exact, used when quantity * price cannot be."""
        self.quantity = Decimal(1) if self.amount >= 0 else Decimal(-1)
        self.price = abs(self.amount)


@dataclass(frozen=True)
class _Discount:
    path: str
    amount: Decimal
    applies_to: tuple[int, ...]  # indexes into the sales lines


def _line_items(
    doc: _Document, entity: Mapping[str, Any], context: CompanyContext, item_skus: Mapping[str, str]
) -> tuple[tuple[UpsertInput, ...], Decimal]:
    """The line items (sales lines, then tax) and the total of the document's discounts."""
    sales, discounts = _read_lines(doc, entity.get("Line") or ())
    for discount in discounts:
        _apply_discount(doc, sales, discount)
    net_total = sum(
        (line.amount - from_minor(line.discount_minor, doc.currency) for line in sales), Decimal(0)
    )
    if net_total + doc.tax != doc.total:
        raise TotalMismatch(
            doc.label,
            "TotalAmt",
            f"line items ({doc.money(net_total, 'Line')}) plus tax ({doc.money(doc.tax, 'TotalTax')}) "
            f"make {doc.money(net_total + doc.tax, 'Line')}, not {doc.money(doc.total, 'TotalAmt')}",
        )
    items = [_sales_line_item(doc, line, position, context, item_skus) for position, line in enumerate(sales)]
    if doc.tax != 0:
        items.append(_tax_line_item(doc, entity, len(items), context))
    return tuple(items), sum((discount.amount for discount in discounts), Decimal(0))


def _read_lines(
    doc: _Document, raw_lines: Sequence[Mapping[str, Any]]
) -> tuple[list[_SalesLine], list[_Discount]]:
    sales: list[_SalesLine] = []
    discounts: list[_Discount] = []
    for index, line in enumerate(raw_lines):
        path = f"Line[{index}]"
        detail_type = line.get("DetailType")
        if detail_type == "SalesItemLineDetail":
            sales.append(_sales_line(doc, line, path, key_id=_line_id(doc, line, path)))
        elif detail_type == "GroupLineDetail":
            group_id = _line_id(doc, line, path)
            components = _nested(line, "GroupLineDetail", "Line") or ()
            for sub_index, component in enumerate(components):
                sub_path = f"{path}.GroupLineDetail.Line[{sub_index}]"
                sub_type = component.get("DetailType")
                if sub_type == "SalesItemLineDetail":
                    component_id = str(component.get("Id") or sub_index + 1)
                    sales.append(_sales_line(doc, component, sub_path, key_id=f"{group_id}.{component_id}"))
                elif sub_type == "DescriptionOnly":
                    _require_no_amount(doc, component, sub_path)
                else:
                    raise MappingError(
                        doc.label, f"{sub_path}.DetailType", f"unsupported in a group: {sub_type!r}"
                    )
        elif detail_type == "DiscountLineDetail":
            discounts.append(_discount(doc, line, path, sales))
        elif detail_type == "SubTotalLineDetail":
            continue  # QBO derives it from the lines above; HubSpot needs no copy
        elif detail_type == "DescriptionOnly":
            _require_no_amount(doc, line, path)  # a note, not money: not a line item
        else:
            raise MappingError(doc.label, f"{path}.DetailType", f"unsupported line type {detail_type!r}")
    return sales, discounts


def _sales_line(doc: _Document, line: Mapping[str, Any], path: str, *, key_id: str) -> _SalesLine:
    detail = line.get("SalesItemLineDetail") or {}
    amount = to_decimal(_required(line, "Amount", doc.label, path), entity=doc.label, field=f"{path}.Amount")
    doc.money(amount, f"{path}.Amount")
    quantity = optional_decimal(detail.get("Qty"), entity=doc.label, field=f"{path}.SalesItemLineDetail.Qty")
    unit_price = optional_decimal(
        detail.get("UnitPrice"), entity=doc.label, field=f"{path}.SalesItemLineDetail.UnitPrice"
    )
    item_ref = detail.get("ItemRef") or {}
    item_id = _text(item_ref.get("value"))
    description = _text(line.get("Description"))
    name = _text(item_ref.get("name")) or description[:100] or (f"Item {item_id}" if item_id else "Item")
    sales_line = _SalesLine(
        key=doc.line_key(key_id),
        path=path,
        name=name,
        description=description,
        item_id=item_id,
        qbo_quantity=quantity,
        qbo_unit_price=unit_price,
        amount=amount,
        tax_code=_text(_nested(detail, "TaxCodeRef", "value")),
        service_date=optional_qbo_date(
            detail.get("ServiceDate"), entity=doc.label, field=f"{path}.SalesItemLineDetail.ServiceDate"
        ),
        quantity=Decimal(1),
        price=abs(amount),
    )
    effective_quantity = Decimal(1) if quantity is None else quantity
    if unit_price is not None and effective_quantity != 0 and effective_quantity * unit_price == amount:
        # HubSpot's price must not be negative: a credit line keeps its sign in the quantity.
        sign = -1 if unit_price < 0 else 1
        sales_line.quantity, sales_line.price = effective_quantity * sign, unit_price * sign
    elif unit_price is not None and effective_quantity == 0 and amount == 0:
        sales_line.quantity, sales_line.price = Decimal(0), abs(unit_price)
    else:
        # A line-level discount or a unit price finer than the currency: quantity * price is not
        # the line amount, so the line goes as one unit at the amount (QBO values kept in qbo_*).
        sales_line.re_express_as_single_unit()
    return sales_line


def _discount(
    doc: _Document, line: Mapping[str, Any], path: str, preceding: Sequence[_SalesLine]
) -> _Discount:
    detail = line.get("DiscountLineDetail") or {}
    # A discount covers the positive lines above it (QBO discounts the subtotal above the discount
    # line); placed first, it covers the whole document.
    applies_to = tuple(index for index, sales in enumerate(preceding) if sales.amount > 0)
    amount = optional_decimal(line.get("Amount"), entity=doc.label, field=f"{path}.Amount")
    if amount is None:
        percent = optional_decimal(
            detail.get("DiscountPercent"),
            entity=doc.label,
            field=f"{path}.DiscountLineDetail.DiscountPercent",
        )
        if not detail.get("PercentBased") or percent is None:
            raise MappingError(doc.label, f"{path}.Amount", "a discount needs an Amount or a DiscountPercent")
        base = sum((preceding[index].amount for index in applies_to), Decimal(0))
        amount = (base * percent / 100).quantize(quantum(doc.currency), rounding=ROUND_HALF_UP)
    if amount < 0:
        raise MappingError(doc.label, f"{path}.Amount", f"a discount must not be negative, got {amount}")
    doc.money(amount, f"{path}.Amount")
    return _Discount(path=path, amount=amount, applies_to=applies_to)


def _apply_discount(doc: _Document, sales: list[_SalesLine], discount: _Discount) -> None:
    """Spread a document discount over its lines as HubSpot per-unit discounts, exactly.

    Shares are proportional to each line's remaining amount, in whole minor units, and each
    share must divide evenly by the line's quantity (see money.quantity_step). When no such
    split exists, the largest line is re-expressed as one unit (any share divides 1) and the
    split is tried again.
    """
    total = to_minor(discount.amount, doc.currency)
    if total == 0:
        return
    targets = [index for index in discount.applies_to or range(len(sales)) if sales[index].amount > 0]
    while True:
        remaining = [to_minor(sales[i].amount, doc.currency) - sales[i].discount_minor for i in targets]
        steps = [quantity_step(sales[i].quantity) for i in targets]
        shares = allocate(total, remaining, steps, remaining)
        if shares is not None:
            for index, share in zip(targets, shares, strict=True):
                sales[index].discount_minor += share
            return
        divisible = [i for i in targets if sales[i].quantity != 1]
        if sum(remaining) < total or not divisible:
            raise MappingError(
                doc.label,
                f"{discount.path}.Amount",
                f"discount {discount.amount} exceeds the {from_minor(sum(remaining), doc.currency)} "
                "of the lines it applies to",
            )
        largest = max(divisible, key=lambda i: (sales[i].amount, -i))
        sales[largest].re_express_as_single_unit()


def _sales_line_item(
    doc: _Document, line: _SalesLine, position: int, context: CompanyContext, item_skus: Mapping[str, str]
) -> UpsertInput:
    discount = from_minor(line.discount_minor, doc.currency)
    unit_discount = discount / abs(line.quantity) if line.discount_minor else Decimal(0)
    properties = {
        "name": line.name,
        "description": line.description,
        "quantity": format_number(line.quantity),
        "price": format_number(line.price),
        "discount": format_number(unit_discount),
        "amount": doc.money(line.amount - discount, f"{line.path}.Amount"),
        "hs_sku": item_skus.get(line.item_id, ""),
        "hs_line_item_currency_code": doc.currency,
        "hs_position_on_quote": str(position),
        prop.QBO_LINE_ID: line.key,
        prop.QBO_REALM_ID: context.realm_id,
        prop.QBO_ITEM_ID: line.item_id,
        prop.QBO_TAX_CODE: line.tax_code,
        prop.QBO_SERVICE_DATE: hubspot_date(line.service_date) if line.service_date else "",
        prop.QBO_QUANTITY: format_number(line.qbo_quantity) if line.qbo_quantity is not None else "",
        prop.QBO_UNIT_PRICE: format_number(line.qbo_unit_price) if line.qbo_unit_price is not None else "",
    }
    return UpsertInput(prop.QBO_LINE_ID, line.key, properties)


def _tax_line_item(
    doc: _Document, entity: Mapping[str, Any], position: int, context: CompanyContext
) -> UpsertInput:
    key = doc.line_key(TAX_LINE_SUFFIX)
    tax_code = _text(_nested(entity, "TxnTaxDetail", "TxnTaxCodeRef", "value"))
    properties = {
        "name": "Tax",
        "description": _text(_nested(entity, "TxnTaxDetail", "TxnTaxCodeRef", "name")),
        "quantity": "1" if doc.tax > 0 else "-1",
        "price": format_number(abs(doc.tax)),
        "discount": "0",
        "amount": doc.money(doc.tax, "TxnTaxDetail.TotalTax"),
        "hs_sku": "",
        "hs_line_item_currency_code": doc.currency,
        "hs_position_on_quote": str(position),
        prop.QBO_LINE_ID: key,
        prop.QBO_REALM_ID: context.realm_id,
        prop.QBO_ITEM_ID: "",
        prop.QBO_TAX_CODE: tax_code,
        prop.QBO_SERVICE_DATE: "",
        prop.QBO_QUANTITY: "",
        prop.QBO_UNIT_PRICE: "",
    }
    return UpsertInput(prop.QBO_LINE_ID, key, properties)


def _line_id(doc: _Document, line: Mapping[str, Any], path: str) -> str:
    line_id = _text(line.get("Id"))
    if not line_id:
        raise MappingError(doc.label, f"{path}.Id", "is required to key the HubSpot line item")
    return line_id


def _require_no_amount(doc: _Document, line: Mapping[str, Any], path: str) -> None:
    amount = optional_decimal(line.get("Amount"), entity=doc.label, field=f"{path}.Amount")
    if amount not in (None, Decimal(0)):
        raise MappingError(
            doc.label, f"{path}.Amount", f"a description-only line cannot carry money ({amount})"
        )


# --- customers --------------------------------------------------------------------------------


def _address(bill_addr: Mapping[str, Any]) -> dict[str, str]:
    """HubSpot address fields from a QBO PhysicalAddress (any country; free-form lines kept)."""
    extra_lines = [_text(bill_addr.get(f"Line{n}")) for n in range(2, 6)]
    postal = _text(bill_addr.get("PostalCode"))
    suffix = _text(bill_addr.get("PostalCodeSuffix"))
    return {
        "address": _text(bill_addr.get("Line1")),
        "address2": ", ".join(line for line in extra_lines if line),
        "city": _text(bill_addr.get("City")),
        "state": _text(bill_addr.get("CountrySubDivisionCode")),
        "zip": f"{postal}-{suffix}" if postal and suffix else postal,
        "country": _text(bill_addr.get("Country")) or _text(bill_addr.get("CountryCode")),
    }


# --- helpers ----------------------------------------------------------------------------------


def _nested(entity: Mapping[str, Any], *path: str) -> Any:
    value: Any = entity
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _required(entity: Mapping[str, Any], name: str, label: str, path: str | None = None) -> Any:
    value = entity.get(name)
    if value is None:
        raise MappingError(label, f"{path}.{name}" if path else name, "is required")
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()
