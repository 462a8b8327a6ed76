"""One QuickBooks Online company in memory: entities, QBO's validation rules, totals and links.

Everything the Accounting API computes is computed here, the way QBO does it for a US company:

- every object carries ``Id``, ``SyncToken`` (a string, incremented on each write), ``MetaData``
  (``CreateTime`` / ``LastUpdatedTime`` with the company's UTC offset, second precision),
  ``domain: "QBO"`` and ``sparse: false``;
- sales forms (Invoice, Estimate): ``Line.Amount = Qty * UnitPrice`` (validated when both are given,
  computed when Amount is absent), one ``SubTotalLineDetail`` line, a ``DiscountLineDetail`` (percent or
  amount) applied to the subtotal, sales tax from the ``TxnTaxCodeRef``'s rates on the taxable lines
  (``TaxCodeRef`` ``TAX``), ``TotalAmt``, ``Balance``; ``CurrencyRef`` / ``ExchangeRate`` /
  ``HomeTotalAmt`` / ``HomeBalance`` for a foreign-currency customer; ``DueDate`` from the sales term;
- Payments applied through ``Line[].LinkedTxn`` reduce the invoices' ``Balance`` (the invoice lists the
  payment in its ``LinkedTxn``) and ``UnappliedAmt`` keeps the rest; customer ``Balance`` follows;
- an Invoice whose ``LinkedTxn`` names a Pending or Accepted Estimate closes the estimate (``TxnStatus``
  ``Closed``, and the estimate links back to the invoice); a link to a Closed or Rejected estimate, or to
  one another invoice already links ("an Estimate can be linked once"), is dropped without an error
  and the invoice is created without it (Intuit's XSD on ``LinkedTxn.TxnId`` and Invoice reference,
  ../shared/api-notes-flows.md §1.7; the drop for an estimate linked once is assumed to be silent like
  the Closed case, unverified); a link to an estimate that does not exist is Fault 610 (unverified);
- void: amounts zeroed, ``Balance`` 0, ``PrivateNote`` prefixed ``Voided``, applied payments released;
- delete: the object disappears; a tombstone stays for CDC (``{"Id", "status": "Deleted"}``);
- ``DocNumber`` (Intuit's Invoice reference, api-notes §2 "DocNumber"): with
  ``Preferences.SalesFormsPrefs.CustomTxnNumbers`` on, the number sent is kept, none sent stays none,
  and a duplicate is Fault 6140; with it off, QBO numbers a document created without one (the highest
  number + 1). What happens to a number sent while it is off is not stated: Intuit advises not to send
  one "as it can lead to unwanted duplicates" and says one sent on an update "just updates that
  particular invoice", which reads as *kept, unchecked*; that is the default, and
  ``sent_doc_number_policy = "replaced"`` (:class:`Company`, sandbox config
  ``doc_number_when_auto_numbering``) makes QBO's own number win instead (both unverified);
- ``DisplayName`` unique across customers and employees (6240, Intuit's Customer reference; vendors
  are not modelled) and item ``Name`` unique among items: compared without leading or trailing
  whitespace (which is dropped from the stored name) and, by default, without regard to case
  (``names_case_sensitive``, sandbox config ``display_names_case_sensitive``; both unverified).

Side effects on other objects (an invoice paid by a payment, an estimate closed by an invoice) are
written like QBO writes them: a new ``SyncToken``, a new ``LastUpdatedTime`` and a change event.
Assumed (unverified): a customer's ``Balance`` changes without a new SyncToken; an item's ``QtyOnHand``
follows invoices the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ledgerlink_local.sandboxes.qbo.faults import (
    amount_mismatch,
    business_error,
    duplicate_document_number,
    duplicate_name,
    invalid_value,
    object_not_found,
    required_missing,
    stale_object,
    string_length,
    unrecognized_field,
    unsupported_operation,
)

JsonObject = dict[str, Any]
CENT = Decimal("0.01")
DOC_NUMBER_MAX_LENGTH = 21
SANDBOX_USER = "Sandbox Admin"  # the "other user" named in a Stale Object Error
SKU_MAX_LENGTH = 100  # Intuit's Item reference: Sku, "maximum of 100 chars"
# What a DocNumber sent while CustomTxnNumbers is off becomes (see the module docstring; unverified).
DOC_NUMBER_POLICIES = ("kept", "replaced")
# Estimates an invoice can still link (Intuit: Closed or Rejected ones are ignored without an error).
LINKABLE_ESTIMATE_STATUSES = ("Pending", "Accepted")

# ---------------------------------------------------------------------------- entity table


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The top-level fields of each writable entity in Intuit's data model (the XSD; tests check the lists
# against it). QBO stores what it does not compute as given; the sandbox does the same.
_ENTITY_BASE = _names("Id SyncToken MetaData domain sparse status CustomField AttachableRef")
_SALES_FORM = _names(
    """ARAccountRef ApplyTaxAfterDiscount AutoDocNumber Balance BillAddr BillEmail BillEmailBcc BillEmailCc
    CheckPayment ClassRef CreditCardPayment CurrencyRef CustomerMemo CustomerRef DeliveryInfo DepartmentRef
    DepositToAccountRef DiscountAmt DiscountRate DocNumber DueDate EmailStatus ExchangeRate FOB FinanceCharge
    FreeFormAddress GlobalTaxCalculation GovtTxnRefIdentifier HomeBalance HomeTotalAmt HomeTotalCostAmount Line
    LinkedTxn PONumber PaymentMethodRef PaymentRefNum PaymentType PrintStatus PrivateNote ProjectRef
    RecurDataRef RecurringInfo RemitToRef SalesRepRef SalesTermRef ShipAddr ShipDate ShipFromAddr ShipMethodRef
    ShippingTaxIncludedInTotalTax Tag TaxExemptionRef TaxFormNum TaxFormType TemplateRef TotalAmt
    TotalCostAmount TrackingNum TransactionLocationType TxnApprovalInfo TxnDate TxnSource TxnStatus
    TxnTaxDetail"""
)
_INVOICE = _SALES_FORM | _names(
    """AllowIPNPayment AllowOnlineACHPayment AllowOnlineCreditCardPayment AllowOnlinePayPalPayment
    AllowOnlinePayment AutoPayEligible CfdiUse ConvenienceFeeDetail Deposit ECloudStatusTimeStamp EInvoiceStatus
    Exportation FinancingProductType GlobalInfo GratuityEnabled InvoiceEx InvoiceLink InvoiceLinkExpiryDate
    InvoiceLinkSecurityCode LessCIS PaymentDetailsMessage SchedulePayEligible ScheduledPaymentId
    SubscriptionPaymentsSetting callToAction invoiceStatus invoiceStatusLog"""
)
_ESTIMATE = _SALES_FORM | _names("AcceptedBy AcceptedDate EstimateEx ExpirationDate")
_PERSON = _names(
    """Active AlternatePhone CompanyName DefaultTaxCodeRef DisplayName FamilyName Fax FullyQualifiedName
    GivenName IntuitId MiddleName Mobile Notes Organization OtherAddr OtherContactInfo PrimaryEmailAddr
    PrimaryPhone PrintOnCheckName Suffix Title UserId V4IDPseudonym WebAddr"""
)
_CUSTOMER = _PERSON | _names(
    """ARAccountRef AcctNum AltContactName Balance BalanceWithJobs BillAddr BillWithParent BusinessNumber
    CCDetail ClientCompanyId ClientEntityId ContactName CreditLimit CurrencyRef CustomerEx CustomerTypeRef GSTIN
    GSTRegistrationType IsCISContractor IsProject Job JobInfo Level OpenBalanceDate OverDueBalance ParentRef
    PaymentMethodRef PreferredDeliveryMethod PriceLevelRef PrimaryTaxIdentifier ResaleNum RootCustomerRef
    SalesRepRef SalesTermRef SecondaryTaxIdentifier ShipAddr Source TDSEnabled TaxExemptionReasonId
    TaxGroupCodeRef TaxRateRef TaxRegime Taxable TotalExpense TotalRevenue"""
)
_EMPLOYEE = _PERSON | _names(
    """BillRate BillableTime BirthDate CostRate EmployeeEx EmployeeNumber EmployeeType Gender HiredDate
    PrimaryAddr ReleasedDate SSN UseTimeEntry"""
)
_ITEM = _names(
    """AbatementRate Active AssetAccountRef AvgCost BuildPoint COGSAccountRef ClassRef DeferredRevenue
    DepositToAccountRef Description ExpenseAccountRef FullyQualifiedName IncomeAccountRef InvStartDate
    ItemAssemblyDetail ItemCategoryType ItemEx ItemGroupDetail Level ManPartNum Name ParentRef PaymentMethodRef
    PercentBased PrefVendorRef PrintGroupedItems PurchaseCost PurchaseDesc PurchaseTaxCodeRef
    PurchaseTaxIncluded QtyOnHand QtyOnPurchaseOrder QtyOnSalesOrder RatePercent ReorderPoint ReverseChargeRate
    SalesTaxCodeRef SalesTaxIncluded ServiceType Sku Source SpecialItem SpecialItemType SubItem
    TaxClassificationRef Taxable TrackQtyOnHand Type UOMSetRef UQCDisplayText UQCId UnitPrice"""
)
_PAYMENT = _names(
    """ARAccountRef CheckPayment CreditCardPayment CurrencyRef CustomerRef DepartmentRef DepositToAccountRef
    DocNumber ExchangeRate HomeTotalCostAmount Line LinkedTxn PaymentEx PaymentMethodRef PaymentRefNum
    PaymentType PrivateNote ProcessPayment ProjectRef RecurDataRef RecurringInfo RemitToRef Tag TaxFormNum
    TaxFormType TotalAmt TotalCostAmount TransactionLocationType TxnApprovalInfo TxnDate TxnSource TxnStatus
    TxnTaxDetail UnappliedAmt"""
)
_TIME_ACTIVITY = _names(
    """BillableStatus BreakHours BreakMinutes BreakSeconds ClassRef CostRate CustomerRef DepartmentRef
    Description EmployeeRef EndTime HourlyRate Hours HoursInEmployeeTimeZone ItemRef Minutes NameOf OtherNameRef
    PayrollItemRef ProjectRef Seconds StartTime Taxable TimeActivityEx TimeChargeId TimeZone TxnDate VendorRef"""
)
_COMPANY_INFO = _names(
    """CompanyAddr CompanyEmailAddr CompanyFileName CompanyInfoEx CompanyName CompanyStartDate CompanyURL
    CompanyUserAdminEmail CompanyUserId Country CustomerCommunicationAddr CustomerCommunicationEmailAddr
    DefaultTimeZone Email EmployerId Fax FifoCalculationStatus FiscalYearStartMonth FlavorStratum
    LastImportedTime LastSyncTime LegalAddr LegalName Mobile MultiByteCharsSupported NameValue OtherAddr
    OtherContactInfo PrimaryPhone QBVersion SampleFile ShipAddr SupportedLanguages TaxYearStartMonth WebAddr"""
)
_PREFERENCES = _names(
    """AccountingInfoPrefs AdvancedInventoryPrefs CurrencyPrefs EmailMessagesPrefs FinanceChargesPrefs
    OtherPrefs PrintDocumentPrefs ProductAndServicesPrefs ReportPrefs SalesFormsPrefs TaxPrefs TimeTrackingPrefs
    VendorAndPurchasesPrefs"""
)
_TAX_CODE = _names("Name Description Active Taxable TaxGroup SalesTaxRateList PurchaseTaxRateList")
_TAX_RATE = _names("Name Description Active RateValue AgencyRef SpecialTaxType DisplayType EffectiveTaxRate")
_TERM = _names("Name Active Type DueDays DiscountDays DiscountPercent")
_ACCOUNT = _names(
    "Name Active AccountType AccountSubType Classification CurrentBalance CurrencyRef FullyQualifiedName SubAccount"
)


@dataclass(frozen=True)
class EntitySpec:
    name: str
    input_fields: frozenset[str]  # top-level JSON keys a write may carry (all defined by Intuit's XSD)
    operations: frozenset[str]  # create, update, delete, void
    computed: frozenset[str] = frozenset()  # read-only: ignored on input, recomputed
    name_list: bool = False  # queries return only Active objects unless Active is filtered
    singleton: bool = False  # CompanyInfo, Preferences: one per company


def _spec(
    name: str,
    fields: frozenset[str],
    operations: str,
    computed: str = "",
    *,
    name_list: bool = False,
    singleton: bool = False,
) -> EntitySpec:
    return EntitySpec(
        name,
        _ENTITY_BASE | fields,
        _names(operations),
        _names(computed),
        name_list=name_list,
        singleton=singleton,
    )


_TXN_COMPUTED = (
    "TotalAmt HomeTotalAmt Balance HomeBalance InvoiceLink InvoiceLinkExpiryDate InvoiceLinkSecurityCode"
)
ENTITIES: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "Customer",
            _CUSTOMER,
            "create update",
            "Balance BalanceWithJobs FullyQualifiedName",
            name_list=True,
        ),
        _spec("Employee", _EMPLOYEE, "create update", "FullyQualifiedName", name_list=True),
        _spec(
            "Item",
            _ITEM,
            "create update",
            "FullyQualifiedName Level AvgCost QtyOnPurchaseOrder QtyOnSalesOrder",
            name_list=True,
        ),
        _spec("Invoice", _INVOICE, "create update delete void", _TXN_COMPUTED),
        _spec("Estimate", _ESTIMATE, "create update delete", _TXN_COMPUTED),
        _spec("Payment", _PAYMENT, "create update delete void", "UnappliedAmt"),
        _spec("TimeActivity", _TIME_ACTIVITY, "create update delete"),
        _spec("TaxCode", _TAX_CODE, "", name_list=True),
        _spec("TaxRate", _TAX_RATE, "", name_list=True),
        _spec("Term", _TERM, "", name_list=True),
        _spec("Account", _ACCOUNT, "", name_list=True),
        _spec("PaymentMethod", _names("Name Active Type"), "", name_list=True),
        _spec("CompanyInfo", _COMPANY_INFO, "update", singleton=True),
        _spec("Preferences", _PREFERENCES, "update", singleton=True),
    )
}
ENTITY_BY_LOWER = {name.lower(): name for name in ENTITIES}
VOIDED_NOTE = "Voided"
ESTIMATE_STATUSES = ("Accepted", "Closed", "Pending", "Rejected")
BILLABLE_STATUSES = ("Billable", "NotBillable", "HasBeenBilled")
ITEM_TYPES = ("Service", "Inventory", "NonInventory")


@dataclass(frozen=True)
class Change:
    """One entity change, as CDC and webhooks report it."""

    realm_id: str
    entity: str
    entity_id: str
    operation: str  # Create | Update | Delete | Void
    at: datetime  # UTC


# ---------------------------------------------------------------------------- helpers


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), much faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value  # str, int, bool, None and Decimal are immutable


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value: Any, name: str) -> Decimal | None:
    """A JSON number (or numeric string, as Jackson accepts) as Decimal; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise invalid_value(name, "a number is required")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise invalid_value(name, "a number is required") from exc
    if not number.is_finite():
        raise invalid_value(name, "a finite number is required")
    return number


def _clean(value: Any) -> Any:
    """Drop null and empty values (SDKs send ``""`` / ``[]`` for unset fields; QBO treats them as absent)."""
    if isinstance(value, Mapping):
        cleaned = {key: _clean(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item not in (None, "", [], {})}
    if isinstance(value, list):
        return [_clean(item) for item in value if item not in (None, "")]
    return value


def _ref_value(ref: Any, name: str) -> str | None:
    if ref is None:
        return None
    value = ref.get("value") if isinstance(ref, Mapping) else ref
    if value is None or value == "":
        return None
    if isinstance(value, (Mapping, list, bool)):
        raise invalid_value(name, "a reference needs a string value")
    return str(value)


def _parse_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid_value(name, "a date in the form YYYY-MM-DD is required") from exc


def _parse_datetime(value: Any, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise invalid_value(name, "an ISO 8601 date-time is required") from exc
    return moment


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _id_key(entity_id: str) -> tuple[int, str]:
    return (int(entity_id), "") if entity_id.isdigit() else (1 << 62, entity_id)


# ---------------------------------------------------------------------------- the company


class Company:
    """The objects of one QBO company (realm) and the rules that keep them consistent."""

    def __init__(
        self,
        realm_id: str,
        now: Callable[[], datetime],
        time_zone: str = "America/Los_Angeles",
        on_change: Callable[[Change], None] | None = None,
    ) -> None:
        self.realm_id = realm_id
        self._clock = now
        self.tz = ZoneInfo(time_zone)
        self.on_change = on_change
        self.now_override: datetime | None = None  # seeding backdates the demo company's history
        self.objects: dict[str, dict[str, JsonObject]] = {name: {} for name in ENTITIES}
        self.tombstones: dict[str, dict[str, JsonObject]] = {name: {} for name in ENTITIES}
        self.changes: list[Change] = []
        self.home_currency = "USD"
        # The line tax codes a line without TaxCodeRef gets (taxable, not taxable): US companies have
        # TAX/NON; a non-US company has no such codes, its default is one of its own (e.g. 20.0% S).
        self.line_tax_codes: tuple[str, str] = ("TAX", "NON")
        self.currencies: dict[str, tuple[str, Decimal]] = {"USD": ("United States Dollar", Decimal(1))}
        # Assumed rules (unverified; the sandbox's config sets them on every company, see the docstring).
        self.sent_doc_number_policy = "kept"
        self.names_case_sensitive = False
        self._sequence: dict[str, int] = {}
        self._voided: set[tuple[str, str]] = set()
        self._status_before_close: dict[str, str] = {}
        self._payments_by_invoice: dict[str, set[str]] = {}
        self._invoices_by_estimate: dict[str, set[str]] = {}
        self._txns_by_customer: dict[str, set[tuple[str, str]]] = {}

    # ---- time

    def now(self) -> datetime:
        return self.now_override or self._clock()

    def stamp(self, moment: datetime | None = None) -> str:
        """QBO's MetaData form: company offset, second precision (``2026-11-25T06:24:09-08:00``)."""
        return (moment or self.now()).astimezone(self.tz).isoformat(timespec="seconds")

    def response_time(self) -> str:
        """The ``time`` of a response: company offset, milliseconds."""
        return self._clock().astimezone(self.tz).isoformat(timespec="milliseconds")

    def today(self) -> date:
        return self.now().astimezone(self.tz).date()

    # ---- reads

    def read(self, entity: str, entity_id: str) -> JsonObject:
        found = self.objects[entity].get(entity_id)
        if found is None:
            raise object_not_found("Id")
        return json_copy(found)

    def all(self, entity: str) -> list[JsonObject]:
        return list(self.objects[entity].values())

    def singleton(self, entity: str) -> JsonObject:
        return json_copy(next(iter(self.objects[entity].values())))

    def preferences(self) -> JsonObject:
        return next(iter(self.objects["Preferences"].values()))

    def changed_since(self, entity: str, since: datetime) -> list[JsonObject]:
        """Objects (and tombstones) whose LastUpdatedTime is at or after ``since``, oldest first."""
        found = [
            obj
            for obj in [*self.objects[entity].values(), *self.tombstones[entity].values()]
            if datetime.fromisoformat(obj["MetaData"]["LastUpdatedTime"]) >= since
        ]
        found.sort(key=lambda obj: (obj["MetaData"]["LastUpdatedTime"], _id_key(obj["Id"])))
        return [json_copy(obj) for obj in found]

    def is_voided(self, entity: str, entity_id: str) -> bool:
        return (entity, entity_id) in self._voided

    # ---- writes

    def create(self, entity: str, body: Any) -> JsonObject:
        spec = self._writable(entity, "create")
        obj = self._input(spec, body)
        for key in ("Id", "SyncToken"):
            obj.pop(key, None)
        prepared = self._prepare(entity, obj, None)
        prepared["Id"] = self._next_id(entity)
        self._stamp(prepared, None)
        self._commit(entity, prepared, None, "Create")
        return json_copy(prepared)

    def update(self, entity: str, body: Any) -> JsonObject:
        spec = self._writable(entity, "update")
        obj = self._input(spec, body)
        old = self._current(entity, obj)
        if self.is_voided(entity, old["Id"]):
            raise business_error("A voided transaction cannot be changed.")
        if _bool(obj.get("sparse"), False):
            merged = {key: value for key, value in json_copy(old).items() if key not in spec.computed}
            if spec.singleton:
                for key, value in obj.items():  # preference sections merge field by field
                    if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                        merged[key] = {**merged[key], **value}
                    else:
                        merged[key] = value
            else:
                merged.update(obj)
        else:
            merged = obj
        merged["Id"] = old["Id"]
        prepared = self._prepare(entity, merged, old)
        self._stamp(prepared, old)
        self._commit(entity, prepared, old, "Update")
        return json_copy(prepared)

    def delete(self, entity: str, body: Any) -> JsonObject:
        spec = self._writable(entity, "delete")
        obj = self._input(spec, body)
        old = self._current(entity, obj)
        self._commit(entity, None, old, "Delete")
        return {"domain": "QBO", "status": "Deleted", "Id": old["Id"]}

    def void(self, entity: str, body: Any) -> JsonObject:
        spec = self._writable(entity, "void")
        obj = self._input(spec, body)
        old = self._current(entity, obj)
        if self.is_voided(entity, old["Id"]):
            return json_copy(old)  # voiding twice changes nothing
        voided = json_copy(old)
        note = str(old.get("PrivateNote") or "")
        voided["PrivateNote"] = f"{VOIDED_NOTE} - {note}" if note else VOIDED_NOTE
        voided["TotalAmt"] = Decimal(0)
        if entity == "Invoice":
            for line in voided.get("Line", []):
                line["Amount"] = Decimal(0)
                detail = line.get("SalesItemLineDetail")
                if detail is not None and "Qty" in detail:
                    detail["Qty"] = Decimal(0)
            tax = voided.get("TxnTaxDetail")
            if tax is not None:
                tax["TotalTax"] = Decimal(0)
                for tax_line in tax.get("TaxLine", []):
                    tax_line["Amount"] = Decimal(0)
            voided["LinkedTxn"] = []
            voided["Balance"] = Decimal(0)
            voided.pop("Deposit", None)
            for home in ("HomeTotalAmt", "HomeBalance"):
                if home in voided:
                    voided[home] = Decimal(0)
        else:  # Payment: nothing applied any more
            voided["Line"] = []
            voided["UnappliedAmt"] = Decimal(0)
        voided = {key: value for key, value in voided.items() if value != []}
        self._voided.add((entity, old["Id"]))
        self._stamp(voided, old)
        self._commit(entity, voided, old, "Void")
        return json_copy(voided)

    def insert_reference_data(self, entity: str, obj: JsonObject) -> JsonObject:
        """Seed a read-only list object (TaxCode, Term, ...) with a chosen Id."""
        stored = json_copy(obj)
        stored.setdefault("Id", self._next_id(entity))
        stored.setdefault("domain", "QBO")
        stored.setdefault("sparse", False)
        self._stamp(stored, None)
        self.objects[entity][str(stored["Id"])] = stored
        if str(stored["Id"]).isdigit() and entity in self._sequence:  # later ids follow a chosen one
            self._sequence[entity] = max(self._sequence[entity], int(stored["Id"]))
        return stored

    # ---- write pipeline

    def _writable(self, entity: str, operation: str) -> EntitySpec:
        spec = ENTITIES[entity]
        if operation not in spec.operations:
            raise unsupported_operation(f"Operation {operation} is not supported for {entity}.")
        return spec

    def _input(self, spec: EntitySpec, body: Any) -> JsonObject:
        if not isinstance(body, Mapping):
            raise invalid_value(spec.name, "the request body must be a JSON object")
        for key in body:
            if key not in spec.input_fields:
                raise unrecognized_field(str(key), spec.name)
        cleaned: JsonObject = _clean(body)
        for key in spec.computed | {"MetaData", "domain", "status"}:
            cleaned.pop(key, None)
        return cleaned

    def _current(self, entity: str, obj: Mapping[str, Any]) -> JsonObject:
        entity_id = obj.get("Id")
        if entity_id is None:
            raise required_missing("Id")
        sync_token = obj.get("SyncToken")
        if sync_token is None:
            raise required_missing("SyncToken")
        old = self.objects[entity].get(str(entity_id))
        if old is None:
            raise object_not_found("Id")
        if str(sync_token) != old["SyncToken"]:
            raise stale_object(SANDBOX_USER)
        return old

    def _next_id(self, entity: str) -> str:
        last = self._sequence.get(entity)
        if last is None:  # the first id this company hands out: after every id seeded so far
            used = [int(key) for key in self.objects[entity] if key.isdigit()]
            used += [int(key) for key in self.tombstones[entity] if key.isdigit()]
            last = max(used, default=0)
        following = last + 1
        # Ids are never reused, even where an object was stored under an explicit id meanwhile.
        while str(following) in self.objects[entity] or str(following) in self.tombstones[entity]:
            following += 1
        self._sequence[entity] = following
        return str(following)

    def _stamp(self, obj: JsonObject, old: Mapping[str, Any] | None) -> None:
        now = self.stamp()
        obj["domain"] = "QBO"
        obj["sparse"] = False
        if old is None:
            obj["SyncToken"] = "0"
            obj["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        else:
            obj["SyncToken"] = str(int(old["SyncToken"]) + 1)
            obj["MetaData"] = {"CreateTime": old["MetaData"]["CreateTime"], "LastUpdatedTime": now}

    def _touch(self, entity: str, obj: JsonObject) -> None:
        """A write caused by another object's change (payment applied, estimate closed)."""
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        obj["MetaData"] = {**obj["MetaData"], "LastUpdatedTime": self.stamp()}
        self._record(entity, obj["Id"], "Update")

    def _record(self, entity: str, entity_id: str, operation: str) -> None:
        change = Change(self.realm_id, entity, entity_id, operation, self.now().astimezone(UTC))
        self.changes.append(change)
        if self.on_change is not None:
            self.on_change(change)

    def _commit(self, entity: str, new: JsonObject | None, old: JsonObject | None, operation: str) -> None:
        if old is not None:
            self._unindex(entity, old)
        if new is None:
            assert old is not None
            del self.objects[entity][old["Id"]]
            self._voided.discard((entity, old["Id"]))
            self.tombstones[entity][old["Id"]] = {
                "domain": "QBO",
                "status": "Deleted",
                "Id": old["Id"],
                "MetaData": {"LastUpdatedTime": self.stamp()},
            }
            entity_id = old["Id"]
        else:
            self.objects[entity][new["Id"]] = new
            self._index(entity, new)
            entity_id = new["Id"]
        self._record(entity, entity_id, operation)
        self._after_write(entity, old, new)

    # ---- indexes between objects

    def _index(self, entity: str, obj: Mapping[str, Any]) -> None:
        customer = _ref_value(obj.get("CustomerRef"), "CustomerRef")
        if entity in ("Invoice", "Payment", "Estimate") and customer:
            self._txns_by_customer.setdefault(customer, set()).add((entity, obj["Id"]))
        if entity == "Invoice":
            for estimate_id in _linked(obj, "Estimate"):
                self._invoices_by_estimate.setdefault(estimate_id, set()).add(obj["Id"])
        if entity == "Payment":
            for line in obj.get("Line", []):
                for invoice_id in _linked(line, "Invoice"):
                    self._payments_by_invoice.setdefault(invoice_id, set()).add(obj["Id"])

    def _unindex(self, entity: str, obj: Mapping[str, Any]) -> None:
        customer = _ref_value(obj.get("CustomerRef"), "CustomerRef")
        if customer:
            self._txns_by_customer.get(customer, set()).discard((entity, obj["Id"]))
        if entity == "Invoice":
            for estimate_id in _linked(obj, "Estimate"):
                self._invoices_by_estimate.get(estimate_id, set()).discard(obj["Id"])
        if entity == "Payment":
            for line in obj.get("Line", []):
                for invoice_id in _linked(line, "Invoice"):
                    self._payments_by_invoice.get(invoice_id, set()).discard(obj["Id"])

    # ---- side effects

    def _after_write(self, entity: str, old: JsonObject | None, new: JsonObject | None) -> None:
        customers = {
            _ref_value(obj.get("CustomerRef"), "CustomerRef") for obj in (old, new) if obj is not None
        }
        if entity == "Invoice":
            invoice_id = (new or old or {})["Id"]
            if new is None or self.is_voided("Invoice", invoice_id):
                self._release_payments(invoice_id)
            estimates = {e for obj in (old, new) if obj is not None for e in _linked(obj, "Estimate")}
            for estimate_id in sorted(estimates):
                self._refresh_estimate(estimate_id)
            self._adjust_inventory(old, new)
        if entity == "Payment":
            invoices = {
                invoice_id
                for obj in (old, new)
                if obj is not None
                for line in obj.get("Line", [])
                for invoice_id in _linked(line, "Invoice")
            }
            for invoice_id in sorted(invoices, key=_id_key):
                self._refresh_invoice(invoice_id)
        if entity in ("Invoice", "Payment"):
            for customer_id in customers:
                if customer_id:
                    self._refresh_customer_balance(customer_id)

    def _applied_to(self, invoice_id: str) -> tuple[Decimal, list[JsonObject]]:
        total = Decimal(0)
        links: list[JsonObject] = []
        for payment_id in sorted(self._payments_by_invoice.get(invoice_id, set()), key=_id_key):
            payment = self.objects["Payment"].get(payment_id)
            if payment is None:
                continue
            for line in payment.get("Line", []):
                if invoice_id in _linked(line, "Invoice"):
                    total += Decimal(line["Amount"])
            links.append({"TxnId": payment_id, "TxnType": "Payment"})
        return total, links

    def _invoice_balance(self, invoice: Mapping[str, Any], applied: Decimal) -> Decimal:
        deposit = Decimal(invoice.get("Deposit", 0))
        return money(Decimal(invoice["TotalAmt"]) - deposit - applied)

    def _refresh_invoice(self, invoice_id: str) -> None:
        invoice = self.objects["Invoice"].get(invoice_id)
        if invoice is None or self.is_voided("Invoice", invoice_id):
            return
        applied, payment_links = self._applied_to(invoice_id)
        balance = self._invoice_balance(invoice, applied)
        links = [link for link in invoice.get("LinkedTxn", []) if link.get("TxnType") != "Payment"]
        links += payment_links
        changed = balance != Decimal(invoice["Balance"]) or links != invoice.get("LinkedTxn", [])
        if not changed:
            return
        invoice["Balance"] = balance
        if "ExchangeRate" in invoice:
            invoice["HomeBalance"] = money(balance * Decimal(invoice["ExchangeRate"]))
        if links:
            invoice["LinkedTxn"] = links
        else:
            invoice.pop("LinkedTxn", None)
        self._touch("Invoice", invoice)

    def _release_payments(self, invoice_id: str) -> None:
        """A deleted or voided invoice no longer holds payments: they become unapplied credit."""
        for payment_id in sorted(self._payments_by_invoice.pop(invoice_id, set()), key=_id_key):
            payment = self.objects["Payment"].get(payment_id)
            if payment is None:
                continue
            lines = [line for line in payment.get("Line", []) if invoice_id not in _linked(line, "Invoice")]
            applied = sum((Decimal(line["Amount"]) for line in lines), Decimal(0))
            if lines:
                payment["Line"] = lines
            else:
                payment.pop("Line", None)
            payment["UnappliedAmt"] = money(Decimal(payment["TotalAmt"]) - applied)
            self._touch("Payment", payment)
            customer_id = _ref_value(payment.get("CustomerRef"), "CustomerRef")
            if customer_id:
                self._refresh_customer_balance(customer_id)

    def _refresh_estimate(self, estimate_id: str) -> None:
        estimate = self.objects["Estimate"].get(estimate_id)
        if estimate is None:
            return
        invoices = sorted(self._invoices_by_estimate.get(estimate_id, set()), key=_id_key)
        links = [{"TxnId": invoice_id, "TxnType": "Invoice"} for invoice_id in invoices]
        status = estimate.get("TxnStatus", "Pending")
        if links and status != "Closed":
            self._status_before_close[estimate_id] = status
            status = "Closed"
        elif not links and status == "Closed" and estimate_id in self._status_before_close:
            status = self._status_before_close.pop(estimate_id)
        if links == estimate.get("LinkedTxn", []) and status == estimate.get("TxnStatus"):
            return
        estimate["TxnStatus"] = status
        if links:
            estimate["LinkedTxn"] = links
        else:
            estimate.pop("LinkedTxn", None)
        self._touch("Estimate", estimate)

    def _refresh_customer_balance(self, customer_id: str) -> None:
        customer = self.objects["Customer"].get(customer_id)
        if customer is None:
            return
        balance = Decimal(0)
        for entity, txn_id in self._txns_by_customer.get(customer_id, set()):
            txn = self.objects[entity].get(txn_id)
            if txn is None:
                continue
            if entity == "Invoice":
                balance += Decimal(txn.get("Balance", 0))
            elif entity == "Payment":
                balance -= Decimal(txn.get("UnappliedAmt", 0))
        customer["Balance"] = money(balance)
        customer["BalanceWithJobs"] = money(balance)

    def _adjust_inventory(self, old: JsonObject | None, new: JsonObject | None) -> None:
        def sold(invoice: JsonObject | None) -> dict[str, Decimal]:
            quantities: dict[str, Decimal] = {}
            if invoice is None:
                return quantities
            for line in invoice.get("Line", []):
                detail = line.get("SalesItemLineDetail")
                if not detail:
                    continue
                item_id = _ref_value(detail.get("ItemRef"), "ItemRef") or ""
                item = self.objects["Item"].get(item_id)
                if item is not None and item.get("Type") == "Inventory":
                    quantities[item_id] = quantities.get(item_id, Decimal(0)) + Decimal(detail.get("Qty", 0))
            return quantities

        before, after = sold(old), sold(new)
        for item_id in set(before) | set(after):
            delta = after.get(item_id, Decimal(0)) - before.get(item_id, Decimal(0))
            if delta:
                item = self.objects["Item"][item_id]
                item["QtyOnHand"] = Decimal(item.get("QtyOnHand", 0)) - delta

    # ---- validation and computation per entity

    def _prepare(self, entity: str, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        preparers: dict[str, Callable[[JsonObject, JsonObject | None], JsonObject]] = {
            "Customer": self._prepare_customer,
            "Employee": self._prepare_employee,
            "Item": self._prepare_item,
            "Invoice": self._prepare_sales_form,
            "Estimate": self._prepare_sales_form,
            "Payment": self._prepare_payment,
            "TimeActivity": self._prepare_time_activity,
            "CompanyInfo": self._prepare_company_info,
            "Preferences": lambda new, _old: new,
        }
        if entity == "Invoice":
            obj["__entity__"] = "Invoice"
        elif entity == "Estimate":
            obj["__entity__"] = "Estimate"
        prepared = preparers[entity](obj, old)
        prepared.pop("__entity__", None)
        return prepared

    def reference(self, entity: str, ref: Any, element: str, *, named: bool = True) -> JsonObject:
        """A ``{value, name}`` reference to an existing, active list object (else Fault 610)."""
        value = _ref_value(ref, element)
        if value is None:
            raise required_missing(element)
        target = self.objects[entity].get(value)
        if target is None or not _bool(target.get("Active"), True):
            raise object_not_found(element)
        if not named:
            return {"value": value}
        label = target.get("DisplayName") or target.get("Name") or target.get("FullyQualifiedName")
        return {"value": value, "name": label} if label else {"value": value}

    def _name_key(self, name: Any) -> str:
        """The form two names are compared in for uniqueness (6240)."""
        text = str(name or "").strip()
        return text if self.names_case_sensitive else text.casefold()

    def _check_display_name(self, entity: str, obj: JsonObject, old: JsonObject | None) -> None:
        name = str(obj["DisplayName"]).strip()
        if not name:
            raise required_missing("DisplayName")
        if ":" in name:
            raise invalid_value("DisplayName", "the name cannot contain a colon (:)")
        key = self._name_key(name)
        for other_entity in ("Customer", "Employee"):
            for other in self.objects[other_entity].values():
                if old is not None and other_entity == entity and other["Id"] == old["Id"]:
                    continue
                if self._name_key(other.get("DisplayName")) == key:
                    raise duplicate_name("customer, vendor, or employee")
        obj["DisplayName"] = name

    def _derive_display_name(self, obj: JsonObject) -> None:
        if obj.get("DisplayName"):
            return
        parts = [obj.get(key) for key in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
        name = " ".join(str(part) for part in parts if part) or obj.get("CompanyName")
        if not name:
            raise required_missing("DisplayName")
        obj["DisplayName"] = name

    def _prepare_customer(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        self._derive_display_name(obj)
        self._check_display_name("Customer", obj, old)
        obj["FullyQualifiedName"] = obj["DisplayName"]
        obj.setdefault("PrintOnCheckName", obj["DisplayName"])
        obj["Active"] = _bool(obj.get("Active"), True)
        obj["Taxable"] = _bool(obj.get("Taxable"), True)
        obj["Job"] = _bool(obj.get("Job"), False)
        obj["BillWithParent"] = _bool(obj.get("BillWithParent"), False)
        obj.setdefault("PreferredDeliveryMethod", "Print")
        currency = _ref_value(obj.get("CurrencyRef"), "CurrencyRef") or self.home_currency
        changed = old is not None and currency != _ref_value(old.get("CurrencyRef"), "CurrencyRef")
        if changed and old is not None and self._txns_by_customer.get(old["Id"]):
            raise business_error("You can't change the currency of a customer that has transactions.")
        obj["CurrencyRef"] = self._currency_ref(currency)
        if obj.get("SalesTermRef"):
            obj["SalesTermRef"] = self.reference("Term", obj["SalesTermRef"], "SalesTermRef", named=False)
        if obj.get("DefaultTaxCodeRef"):
            obj["DefaultTaxCodeRef"] = self.reference(
                "TaxCode", obj["DefaultTaxCodeRef"], "DefaultTaxCodeRef", named=False
            )
        balance = Decimal(old.get("Balance", 0)) if old is not None else Decimal(0)
        obj["Balance"] = balance
        obj["BalanceWithJobs"] = balance
        return obj

    def _prepare_employee(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        if not (obj.get("GivenName") or obj.get("FamilyName") or obj.get("DisplayName")):
            raise required_missing("GivenName")
        self._derive_display_name(obj)
        self._check_display_name("Employee", obj, old)
        obj.setdefault("PrintOnCheckName", obj["DisplayName"])
        obj["Active"] = _bool(obj.get("Active"), True)
        obj["BillableTime"] = _bool(obj.get("BillableTime"), False)
        for rate in ("BillRate", "CostRate"):
            if rate in obj:
                obj[rate] = to_decimal(obj[rate], rate)
        return obj

    def _prepare_item(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        name = str(obj.get("Name", "")).strip()
        if not name:
            raise required_missing("Name")
        if ":" in name:
            raise invalid_value("Name", "the name cannot contain a colon (:)")
        key = self._name_key(name)
        for other in self.objects["Item"].values():
            if (old is None or other["Id"] != old["Id"]) and self._name_key(other.get("Name")) == key:
                raise duplicate_name("product or service")
        obj["Name"] = name
        if obj.get("Sku") is not None:
            sku = str(obj["Sku"])
            if len(sku) > SKU_MAX_LENGTH:
                raise string_length("Sku", SKU_MAX_LENGTH, len(sku))
            obj["Sku"] = sku
        obj["FullyQualifiedName"] = name
        item_type = obj.get("Type", "Service")
        if item_type not in ITEM_TYPES:
            raise invalid_value("Type", f"one of {', '.join(ITEM_TYPES)}")
        obj["Type"] = item_type
        obj["Active"] = _bool(obj.get("Active"), True)
        obj["Taxable"] = _bool(obj.get("Taxable"), item_type != "Service")
        obj["UnitPrice"] = to_decimal(obj.get("UnitPrice"), "UnitPrice") or Decimal(0)
        obj["IncomeAccountRef"] = self.reference("Account", obj.get("IncomeAccountRef"), "IncomeAccountRef")
        if item_type == "Inventory":
            obj["TrackQtyOnHand"] = True
            if obj.get("QtyOnHand") is None:
                raise required_missing("QtyOnHand")
            obj["QtyOnHand"] = to_decimal(obj["QtyOnHand"], "QtyOnHand")
            if not obj.get("InvStartDate"):
                raise required_missing("InvStartDate")
            _parse_date(obj["InvStartDate"], "InvStartDate")
            obj["AssetAccountRef"] = self.reference("Account", obj.get("AssetAccountRef"), "AssetAccountRef")
            obj["ExpenseAccountRef"] = self.reference(
                "Account", obj.get("ExpenseAccountRef"), "ExpenseAccountRef"
            )
        else:
            obj["TrackQtyOnHand"] = False
            obj.pop("QtyOnHand", None)
        return obj

    def _prepare_company_info(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        if not obj.get("CompanyName"):
            raise required_missing("CompanyName")
        return obj

    def _currency_ref(self, code: str) -> JsonObject:
        known = self.currencies.get(code)
        if known is None:
            raise business_error(f"The currency {code} is not enabled for this company.", "CurrencyRef")
        return {"value": code, "name": known[0]}

    def _doc_number(self, entity: str, obj: JsonObject, old: JsonObject | None) -> None:
        custom = _bool(self.preferences().get("SalesFormsPrefs", {}).get("CustomTxnNumbers"), False)
        supplied = obj.get("DocNumber")
        if not custom:
            obj.pop("AutoDocNumber", None)
            if supplied and self.sent_doc_number_policy == "kept":
                # Kept as sent and not checked for duplicates: Intuit warns that sending one while
                # QBO numbers documents "can lead to unwanted duplicates" (unverified reading).
                doc_number = str(supplied)
                if len(doc_number) > DOC_NUMBER_MAX_LENGTH:
                    raise string_length("DocNumber", DOC_NUMBER_MAX_LENGTH, len(doc_number))
                obj["DocNumber"] = doc_number
            elif old is not None and old.get("DocNumber"):
                obj["DocNumber"] = old["DocNumber"]
            elif old is None:
                obj["DocNumber"] = self._next_doc_number(entity)
            else:
                obj.pop("DocNumber", None)
            return
        if _bool(obj.pop("AutoDocNumber", None), False) and not supplied:
            obj["DocNumber"] = self._next_doc_number(entity)
            return
        if not supplied:
            return
        doc_number = str(supplied)
        if len(doc_number) > DOC_NUMBER_MAX_LENGTH:
            raise string_length("DocNumber", DOC_NUMBER_MAX_LENGTH, len(doc_number))
        for other in self.objects[entity].values():
            if (old is None or other["Id"] != old["Id"]) and other.get("DocNumber") == doc_number:
                raise duplicate_document_number(doc_number, entity, other["Id"])
        obj["DocNumber"] = doc_number

    def _next_doc_number(self, entity: str) -> str:
        used = {str(obj.get("DocNumber")) for obj in self.objects[entity].values()}
        numeric = [int(number) for number in used if number.isdigit()]
        candidate = max(numeric, default=1000) + 1
        while str(candidate) in used:
            candidate += 1
        return str(candidate)

    def _txn_date(self, obj: JsonObject) -> date:
        if obj.get("TxnDate"):
            return _parse_date(obj["TxnDate"], "TxnDate")
        today = self.today()
        obj["TxnDate"] = today.isoformat()
        return today

    def _currency(self, obj: JsonObject, customer: Mapping[str, Any]) -> tuple[str, Decimal | None]:
        customer_currency = _ref_value(customer.get("CurrencyRef"), "CurrencyRef") or self.home_currency
        currency = _ref_value(obj.get("CurrencyRef"), "CurrencyRef") or customer_currency
        if currency != customer_currency:
            raise business_error(
                f"The transaction currency {currency} must match the customer's currency {customer_currency}.",
                "CurrencyRef",
            )
        obj["CurrencyRef"] = self._currency_ref(currency)
        if currency == self.home_currency:
            obj.pop("ExchangeRate", None)
            return currency, None
        rate = to_decimal(obj.get("ExchangeRate"), "ExchangeRate") or self.currencies[currency][1]
        if rate <= 0:
            raise invalid_value("ExchangeRate", "must be greater than zero")
        obj["ExchangeRate"] = rate
        return currency, rate

    def _prepare_sales_form(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        entity = obj.pop("__entity__")
        customer_ref = self.reference("Customer", obj.get("CustomerRef"), "CustomerRef")
        obj["CustomerRef"] = customer_ref
        customer = self.objects["Customer"][customer_ref["value"]]
        txn_date = self._txn_date(obj)
        self._doc_number(entity, obj, old)
        _, rate = self._currency(obj, customer)
        lines, subtotal, taxable, discount = self._sales_lines(obj, old, customer)
        tax_detail, total_tax = self._sales_tax(obj, customer, subtotal, taxable, discount)
        obj["Line"] = lines
        obj["TxnTaxDetail"] = tax_detail
        total = money(subtotal - discount + total_tax)
        obj["TotalAmt"] = total
        if rate is not None:
            obj["HomeTotalAmt"] = money(total * rate)
        obj["ApplyTaxAfterDiscount"] = _bool(obj.get("ApplyTaxAfterDiscount"), False)
        obj.setdefault("GlobalTaxCalculation", "TaxExcluded")
        obj.setdefault("PrintStatus", "NotSet")
        obj.setdefault("EmailStatus", "NotSet")
        if customer.get("PrimaryEmailAddr") and not obj.get("BillEmail"):
            obj["BillEmail"] = {"Address": customer["PrimaryEmailAddr"]["Address"]}
        if customer.get("BillAddr") and not obj.get("BillAddr"):
            obj["BillAddr"] = json_copy(customer["BillAddr"])
        self._terms_and_due_date(obj, customer, txn_date)
        if entity == "Estimate":
            status = obj.get("TxnStatus") or (old or {}).get("TxnStatus") or "Pending"
            if status not in ESTIMATE_STATUSES:
                raise invalid_value("TxnStatus", f"one of {', '.join(ESTIMATE_STATUSES)}")
            obj["TxnStatus"] = status
            if old is not None and old.get("LinkedTxn"):
                obj["LinkedTxn"] = json_copy(old["LinkedTxn"])  # links to invoices are QBO's own
            else:
                obj.pop("LinkedTxn", None)
            if obj.get("ExpirationDate"):
                _parse_date(obj["ExpirationDate"], "ExpirationDate")
            return obj
        # Invoice
        estimate_links = self._estimate_links(obj, old)
        deposit = to_decimal(obj.get("Deposit"), "Deposit") or Decimal(0)
        if deposit:
            obj["Deposit"] = money(deposit)
        else:
            obj.pop("Deposit", None)
        applied, payment_links = self._applied_to(old["Id"]) if old is not None else (Decimal(0), [])
        links = estimate_links + payment_links
        if links:
            obj["LinkedTxn"] = links
        else:
            obj.pop("LinkedTxn", None)
        balance = self._invoice_balance(obj, applied)
        obj["Balance"] = balance
        if rate is not None:
            obj["HomeBalance"] = money(balance * rate)
        for flag in (
            "AllowIPNPayment",
            "AllowOnlinePayment",
            "AllowOnlineCreditCardPayment",
            "AllowOnlineACHPayment",
        ):
            obj[flag] = _bool(obj.get(flag), False)
        return obj

    def _estimate_links(self, obj: JsonObject, old: JsonObject | None) -> list[JsonObject]:
        """The estimate links an invoice keeps: ones it already had, and new ones to an estimate that
        is Pending or Accepted and that no other invoice links. QBO drops the others silently, so the
        caller must check the answer's LinkedTxn (../shared/api-notes-flows.md §1.7)."""
        already = set(_linked(old, "Estimate")) if old is not None else set()
        invoice_id = old["Id"] if old is not None else None
        kept: list[JsonObject] = []
        for link in obj.get("LinkedTxn", []):
            if not isinstance(link, Mapping) or link.get("TxnType") != "Estimate":
                continue  # payment links are recomputed; others are not modelled
            estimate_id = _ref_value(link.get("TxnId"), "LinkedTxn.TxnId")
            estimate = self.objects["Estimate"].get(estimate_id or "")
            if estimate is None or estimate_id is None:
                raise object_not_found("LinkedTxn")
            if any(existing["TxnId"] == estimate_id for existing in kept):
                continue
            if estimate_id not in already:
                others = self._invoices_by_estimate.get(estimate_id, set()) - {invoice_id}
                if others or estimate.get("TxnStatus", "Pending") not in LINKABLE_ESTIMATE_STATUSES:
                    continue
            kept.append({"TxnId": estimate_id, "TxnType": "Estimate"})
        return kept

    def _terms_and_due_date(self, obj: JsonObject, customer: Mapping[str, Any], txn_date: date) -> None:
        term_ref = obj.get("SalesTermRef") or customer.get("SalesTermRef")
        if not term_ref:
            term_ref = self.preferences().get("SalesFormsPrefs", {}).get("DefaultTerms")
        term: Mapping[str, Any] | None = None
        if term_ref:
            obj["SalesTermRef"] = self.reference("Term", term_ref, "SalesTermRef", named=False)
            term = self.objects["Term"][obj["SalesTermRef"]["value"]]
        if obj.get("DueDate"):
            due = _parse_date(obj["DueDate"], "DueDate")
            if due < txn_date:
                raise business_error("The due date can't be earlier than the transaction date.", "DueDate")
        else:
            days = int(term.get("DueDays", 0)) if term is not None else 0
            obj["DueDate"] = (txn_date + timedelta(days=days)).isoformat()

    def _sales_lines(
        self, obj: JsonObject, old: JsonObject | None, customer: Mapping[str, Any]
    ) -> tuple[list[JsonObject], Decimal, Decimal, Decimal]:
        raw = obj.get("Line")
        if not raw:
            raise required_missing("Line")
        if not isinstance(raw, list):
            raise invalid_value("Line", "a list of lines is required")
        previous_ids = [line.get("Id") for line in (old or {}).get("Line", []) if line.get("Id")]
        current_ids = [line.get("Id") for line in raw if isinstance(line, Mapping) and line.get("Id")]
        next_line_id = max(
            (int(str(i)) for i in [*previous_ids, *current_ids] if str(i).isdigit()), default=0
        )
        customer_taxable = _bool(customer.get("Taxable"), True)
        item_lines: list[JsonObject] = []
        discount_input: Mapping[str, Any] | None = None
        subtotal = Decimal(0)
        taxable = Decimal(0)
        for position, line in enumerate(raw):
            if not isinstance(line, Mapping):
                raise invalid_value("Line", "each line must be an object")
            detail_type = line.get("DetailType")
            if detail_type in ("SubTotalLineDetail", "TaxLineDetail"):
                continue  # QBO writes these itself
            if detail_type == "DiscountLineDetail":
                if discount_input is not None:
                    raise business_error("Only one discount line is allowed.", "Line")
                discount_input = line
                continue
            if detail_type not in ("SalesItemLineDetail", "DescriptionOnly"):
                raise invalid_value(
                    f"Line[{position}].DetailType",
                    "SalesItemLineDetail, DescriptionOnly, DiscountLineDetail or SubTotalLineDetail",
                )
            out: JsonObject = {}
            if line.get("Id"):
                out["Id"] = str(line["Id"])
            else:
                next_line_id += 1
                out["Id"] = str(next_line_id)
            out["LineNum"] = len(item_lines) + 1
            if line.get("Description"):
                out["Description"] = str(line["Description"])
            if detail_type == "DescriptionOnly":
                out["Amount"] = Decimal(0)
                out["DetailType"] = "DescriptionOnly"
                out["DescriptionLineDetail"] = json_copy(line.get("DescriptionLineDetail") or {})
                item_lines.append(out)
                continue
            amount, detail, line_taxable = self._item_line(line, position, customer_taxable)
            out["Amount"] = amount
            out["DetailType"] = "SalesItemLineDetail"
            out["SalesItemLineDetail"] = detail
            subtotal += amount
            if line_taxable:
                taxable += amount
            item_lines.append(out)
        discount = Decimal(0)
        lines = [
            *item_lines,
            {"Amount": money(subtotal), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ]
        if discount_input is not None:
            discount, discount_line = self._discount_line(discount_input, subtotal)
            lines.append(discount_line)
        return lines, money(subtotal), money(taxable), discount

    def _item_line(
        self, line: Mapping[str, Any], position: int, customer_taxable: bool
    ) -> tuple[Decimal, JsonObject, bool]:
        source = line.get("SalesItemLineDetail") or {}
        if not isinstance(source, Mapping):
            raise invalid_value(f"Line[{position}].SalesItemLineDetail", "an object is required")
        detail: JsonObject = json_copy(dict(source))
        item_ref = source.get("ItemRef") or {"value": "1"}  # QBO's default "Services" item
        detail["ItemRef"] = self.reference("Item", item_ref, "ItemRef")
        item = self.objects["Item"][detail["ItemRef"]["value"]]
        qty = to_decimal(source.get("Qty"), "Qty")
        unit_price = to_decimal(source.get("UnitPrice"), "UnitPrice")
        amount = to_decimal(line.get("Amount"), "Amount")
        if amount is None:
            if unit_price is None:
                unit_price = Decimal(item.get("UnitPrice", 0))
            qty = qty if qty else Decimal(1)
            amount = money(qty * unit_price)
        elif qty and unit_price:
            if money(qty * unit_price) != money(amount):
                raise amount_mismatch(str(amount))
        elif qty and not unit_price:
            unit_price = (amount / qty).normalize()
        amount = money(amount)
        for key, number in (("Qty", qty), ("UnitPrice", unit_price)):
            if number is not None:
                detail[key] = number
            else:
                detail.pop(key, None)
        tax_code = _ref_value(source.get("TaxCodeRef"), "TaxCodeRef")
        if tax_code is None:
            taxable_code, exempt_code = self.line_tax_codes
            tax_code = taxable_code if customer_taxable and _bool(item.get("Taxable"), False) else exempt_code
        code = self.objects["TaxCode"].get(tax_code)
        if code is None:
            raise object_not_found("TaxCodeRef")
        detail["TaxCodeRef"] = {"value": tax_code}
        if detail.get("ServiceDate"):
            _parse_date(detail["ServiceDate"], "ServiceDate")
        line_taxable = customer_taxable and _bool(code.get("Taxable"), False)
        return amount, detail, line_taxable

    def _discount_line(self, line: Mapping[str, Any], subtotal: Decimal) -> tuple[Decimal, JsonObject]:
        source = line.get("DiscountLineDetail") or {}
        percent_based = _bool(source.get("PercentBased"), False)
        detail: JsonObject = {"PercentBased": percent_based}
        if percent_based:
            percent = to_decimal(source.get("DiscountPercent"), "DiscountPercent")
            if percent is None:
                raise required_missing("DiscountPercent")
            if not Decimal(0) <= percent <= Decimal(100):
                raise invalid_value("DiscountPercent", "between 0 and 100")
            detail["DiscountPercent"] = percent
            amount = money(subtotal * percent / 100)
        else:
            given = to_decimal(line.get("Amount"), "Amount")
            if given is None:
                raise required_missing("Amount")
            amount = money(given)
        if amount < 0 or amount > subtotal:
            raise business_error("The discount can't be negative or more than the subtotal.", "Line")
        account = source.get("DiscountAccountRef") or {"value": "7"}
        detail["DiscountAccountRef"] = self.reference("Account", account, "DiscountAccountRef")
        return amount, {"Amount": amount, "DetailType": "DiscountLineDetail", "DiscountLineDetail": detail}

    def _sales_tax(
        self,
        obj: JsonObject,
        customer: Mapping[str, Any],
        subtotal: Decimal,
        taxable: Decimal,
        discount: Decimal,
    ) -> tuple[JsonObject, Decimal]:
        tax_prefs = self.preferences().get("TaxPrefs", {})
        requested = obj.get("TxnTaxDetail") or {}
        code_id = _ref_value(requested.get("TxnTaxCodeRef"), "TxnTaxCodeRef")
        if code_id is None:
            default = _ref_value(customer.get("DefaultTaxCodeRef"), "DefaultTaxCodeRef")
            if default is None or default in ("TAX", "NON"):
                default = _ref_value(tax_prefs.get("TaxGroupCodeRef"), "TaxGroupCodeRef")
            code_id = default
        if not _bool(tax_prefs.get("UsingSalesTax"), False) or code_id is None or taxable == 0:
            detail: JsonObject = {"TotalTax": Decimal(0)}
            if code_id is not None and code_id not in ("TAX", "NON"):
                detail["TxnTaxCodeRef"] = {"value": code_id}
            return detail, Decimal(0)
        code = self.objects["TaxCode"].get(code_id)
        if code is None or code_id in ("TAX", "NON"):
            raise object_not_found("TxnTaxCodeRef")
        base = taxable
        if discount and _bool(obj.get("ApplyTaxAfterDiscount"), False) and subtotal:
            base = money(taxable - discount * taxable / subtotal)
        tax_lines: list[JsonObject] = []
        total = Decimal(0)
        for rate_detail in code.get("SalesTaxRateList", {}).get("TaxRateDetail", []):
            rate_id = rate_detail["TaxRateRef"]["value"]
            rate = self.objects["TaxRate"][rate_id]
            percent = Decimal(rate["RateValue"])
            tax = money(base * percent / 100)
            total += tax
            tax_lines.append(
                {
                    "Amount": tax,
                    "DetailType": "TaxLineDetail",
                    "TaxLineDetail": {
                        "TaxRateRef": {"value": rate_id},
                        "PercentBased": True,
                        "TaxPercent": percent,
                        "NetAmountTaxable": base,
                    },
                }
            )
        return {"TxnTaxCodeRef": {"value": code_id}, "TotalTax": money(total), "TaxLine": tax_lines}, money(
            total
        )

    def _prepare_payment(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        customer_ref = self.reference("Customer", obj.get("CustomerRef"), "CustomerRef")
        obj["CustomerRef"] = customer_ref
        customer = self.objects["Customer"][customer_ref["value"]]
        total = to_decimal(obj.get("TotalAmt"), "TotalAmt")
        if total is None:
            raise required_missing("TotalAmt")
        if total < 0:
            raise invalid_value("TotalAmt", "a payment can't be negative")
        total = money(total)
        obj["TotalAmt"] = total
        self._txn_date(obj)
        currency, _ = self._currency(obj, customer)
        if obj.get("DocNumber") and len(str(obj["DocNumber"])) > DOC_NUMBER_MAX_LENGTH:
            raise string_length("DocNumber", DOC_NUMBER_MAX_LENGTH, len(str(obj["DocNumber"])))
        lines: list[JsonObject] = []
        applied = Decimal(0)
        for position, line in enumerate(obj.get("Line", [])):
            if not isinstance(line, Mapping):
                raise invalid_value("Line", "each line must be an object")
            amount = to_decimal(line.get("Amount"), f"Line[{position}].Amount")
            if amount is None:
                raise required_missing("Line.Amount")
            amount = money(amount)
            links = [link for link in line.get("LinkedTxn", []) if isinstance(link, Mapping)]
            if len(links) != 1 or links[0].get("TxnType") != "Invoice":
                raise invalid_value(f"Line[{position}].LinkedTxn", "one link to an Invoice is required")
            invoice_id = _ref_value(links[0].get("TxnId"), "LinkedTxn.TxnId")
            invoice = self.objects["Invoice"].get(invoice_id or "")
            if invoice is None or invoice_id is None:
                raise object_not_found("LinkedTxn")
            if self.is_voided("Invoice", invoice_id):
                raise business_error(f"Invoice {invoice_id} is voided; a payment can't be applied to it.")
            if invoice["CustomerRef"]["value"] != customer_ref["value"]:
                raise business_error(f"Invoice {invoice_id} belongs to another customer.", "LinkedTxn")
            if invoice["CurrencyRef"]["value"] != currency:
                raise business_error(f"Invoice {invoice_id} is in another currency.", "LinkedTxn")
            open_balance = Decimal(invoice["Balance"])
            if old is not None:  # what this payment already holds on the invoice is available again
                open_balance += sum(
                    (
                        Decimal(previous["Amount"])
                        for previous in old.get("Line", [])
                        if invoice_id in _linked(previous, "Invoice")
                    ),
                    Decimal(0),
                )
            if amount > open_balance:
                raise business_error(
                    f"The amount applied to invoice {invoice_id} ({amount}) is more than its "
                    f"open balance ({open_balance})."
                )
            applied += amount
            lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]})
        if applied > total:
            raise business_error(
                "The payment amount must be at least the total applied to invoices.", "TotalAmt"
            )
        if lines:
            obj["Line"] = lines
        else:
            obj.pop("Line", None)
        obj["UnappliedAmt"] = money(total - applied)
        obj.pop("LinkedTxn", None)
        if not obj.get("DepositToAccountRef"):
            obj["DepositToAccountRef"] = {"value": "4"}  # Undeposited Funds
        obj["ProcessPayment"] = _bool(obj.get("ProcessPayment"), False)
        return obj

    def _prepare_time_activity(self, obj: JsonObject, old: JsonObject | None) -> JsonObject:
        name_of = obj.get("NameOf")
        if not name_of:
            raise required_missing("NameOf")
        if name_of == "Employee":
            obj["EmployeeRef"] = self.reference("Employee", obj.get("EmployeeRef"), "EmployeeRef")
        elif name_of == "Vendor":
            raise business_error("Vendors are not modelled by this sandbox; use NameOf Employee.", "NameOf")
        else:
            raise invalid_value("NameOf", "Employee or Vendor")
        if obj.get("CustomerRef"):
            obj["CustomerRef"] = self.reference("Customer", obj["CustomerRef"], "CustomerRef")
        if obj.get("ItemRef"):
            obj["ItemRef"] = self.reference("Item", obj["ItemRef"], "ItemRef")
        status = obj.get("BillableStatus", "NotBillable")
        if status not in BILLABLE_STATUSES:
            raise invalid_value("BillableStatus", f"one of {', '.join(BILLABLE_STATUSES)}")
        obj["BillableStatus"] = status
        if status == "Billable" and not obj.get("CustomerRef"):
            raise required_missing("CustomerRef")
        self._txn_date(obj)
        has_duration = obj.get("Hours") is not None or obj.get("Minutes") is not None
        has_span = bool(obj.get("StartTime")) and bool(obj.get("EndTime"))
        if not has_duration and not has_span:
            raise required_missing("Hours")
        for key in ("Hours", "Minutes", "Seconds", "BreakHours", "BreakMinutes", "BreakSeconds"):
            if key in obj:
                number = to_decimal(obj[key], key)
                if number is None or number != number.to_integral_value() or number < 0:
                    raise invalid_value(key, "a whole, non-negative number is required")
                obj[key] = int(number)
        if obj.get("Minutes", 0) >= 60:
            raise invalid_value("Minutes", "must be less than 60")
        if has_span:
            start = _parse_datetime(obj["StartTime"], "StartTime")
            end = _parse_datetime(obj["EndTime"], "EndTime")
            if start.tzinfo is None or end.tzinfo is None:
                raise invalid_value("StartTime", "a time-zone offset is required")
            if end <= start:
                raise business_error("The end time must be after the start time.", "EndTime")
        for rate in ("HourlyRate", "CostRate"):
            if rate in obj:
                obj[rate] = to_decimal(obj[rate], rate)
        obj["Taxable"] = _bool(obj.get("Taxable"), False)
        return obj


def _linked(obj: Mapping[str, Any], txn_type: str) -> list[str]:
    return [
        str(link["TxnId"])
        for link in obj.get("LinkedTxn", [])
        if isinstance(link, Mapping) and link.get("TxnType") == txn_type and link.get("TxnId") is not None
    ]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_changed_since(value: str, tz: ZoneInfo) -> datetime:
    """``changedSince`` as QBO takes it: a date (start of day in the company's zone) or a date-time."""
    text = value.strip().replace(" ", "+")  # a '+' offset that was not URL-encoded arrives as a space
    if _ISO_DATE.match(text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tz)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
