"""The demo company every QBO sandbox starts with (and returns to on reset).

A small US design-and-landscaping business in San Francisco (Pacific time, fiscal year from January,
home currency USD, multi-currency on with EUR and CAD, custom transaction numbers on, sales tax on):

- customers: two sharing one e-mail address (a café and its catering arm), one in Germany billed in EUR,
  a tax-exempt non-profit, a person, and a company on Net 15;
- items: the generic "Services"/"Hours" items every QBO company has, service items and inventory items
  (with Sku and QtyOnHand); six carry the SKUs of the HubSpot demo portal's products (``hs_sku``:
  INSTALL, GARDEN, ROCKFTN, SPRHEAD, SPRPIPE, PUMP; sandboxes/hubspot/demo.py) so the HubSpot -> QBO
  demo matches a deal's line items by SKU; its "Hours" product matches QBO's "Hours" by name only,
  and Design, Pest Control and Maintenance & Repair match nothing (the flow's default item);
- tax: California state rate + San Francisco district rate in tax code "San Francisco", plus the US line
  codes TAX and NON; terms Due on receipt, Net 15, Net 30, Net 60; two employees;
- history, dated relative to the sandbox clock: an open invoice, a partially paid one, a paid one, an
  overdue one, a EUR invoice, an accepted estimate ready to become an invoice, a pending estimate, and
  time entries. All of it is older than the CDC window, so a test's CDC call sees only its own changes.

Everything is created through :class:`Company`'s own rules, so the totals are QBO's totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledgerlink_local.sandboxes.qbo.model import Company, JsonObject

COMPANY_NAME = "Bayside Garden Design LLC"
SEED_AGE_DAYS = 45  # the demo history is older than the 30-day CDC window


def _address(line1: str, city: str, region: str, postal: str, country: str = "USA") -> JsonObject:
    return {
        "Line1": line1,
        "City": city,
        "CountrySubDivisionCode": region,
        "PostalCode": postal,
        "Country": country,
    }


def seed_demo_company(company: Company) -> dict[str, Any]:
    """Fill an empty company with the demo data; returns the ids of the notable objects."""
    now = company.now()
    today = company.today()
    start = now - timedelta(days=SEED_AGE_DAYS + 20)

    def at(days_ago: int) -> Callable[[], None]:
        def move() -> None:
            company.now_override = now - timedelta(days=SEED_AGE_DAYS + days_ago)

        return move

    company.now_override = start
    company.currencies.update(
        {"EUR": ("Euro", Decimal("1.0842")), "CAD": ("Canadian Dollar", Decimal("0.7316"))}
    )
    _reference_data(company, today)

    at(19)()
    customers = {
        "acme": _customer(
            company,
            {
                "DisplayName": "Acme Robotics Inc.",
                "CompanyName": "Acme Robotics Inc.",
                "PrimaryEmailAddr": {"Address": "ap@acmerobotics.example"},
                "PrimaryPhone": {"FreeFormNumber": "(415) 555-0142"},
                "BillAddr": _address("500 Terry A Francois Blvd", "San Francisco", "CA", "94158"),
                "SalesTermRef": {"value": "3"},
                "DefaultTaxCodeRef": {"value": "3"},
            },
        ),
        "cafe": _customer(
            company,
            {
                "DisplayName": "Bluebird Café",
                "CompanyName": "Bluebird Hospitality",
                "PrimaryEmailAddr": {"Address": "billing@bluebird.example"},
                "BillAddr": _address("2150 Chestnut St", "San Francisco", "CA", "94123"),
                "SalesTermRef": {"value": "3"},
                "DefaultTaxCodeRef": {"value": "3"},
            },
        ),
        "catering": _customer(
            company,
            {
                "DisplayName": "Bluebird Catering",
                "CompanyName": "Bluebird Hospitality",
                "PrimaryEmailAddr": {"Address": "billing@bluebird.example"},
                "BillAddr": _address("2150 Chestnut St", "San Francisco", "CA", "94123"),
                "SalesTermRef": {"value": "2"},
                "DefaultTaxCodeRef": {"value": "3"},
            },
        ),
        "nordlicht": _customer(
            company,
            {
                "DisplayName": "Nordlicht Gartenbau GmbH",
                "CompanyName": "Nordlicht Gartenbau GmbH",
                "PrimaryEmailAddr": {"Address": "buchhaltung@nordlicht-garten.example"},
                "BillAddr": {
                    "Line1": "Friedrichstraße 123",
                    "City": "Berlin",
                    "PostalCode": "10117",
                    "Country": "Germany",
                    "CountryCode": "DE",
                },
                "CurrencyRef": {"value": "EUR"},
                "Taxable": False,
                "SalesTermRef": {"value": "3"},
            },
        ),
        "greenleaf": _customer(
            company,
            {
                "DisplayName": "Greenleaf Community Garden",
                "CompanyName": "Greenleaf Community Garden",
                "PrimaryEmailAddr": {"Address": "treasurer@greenleaf.example"},
                "BillAddr": _address("45 Hoffman Ave", "San Francisco", "CA", "94114"),
                "Taxable": False,
                "ResaleNum": "EX-2231-SF",
                "SalesTermRef": {"value": "1"},
            },
        ),
        "patel": _customer(
            company,
            {
                "GivenName": "Priya",
                "FamilyName": "Patel",
                "PrimaryEmailAddr": {"Address": "priya.patel@mail.example"},
                "Mobile": {"FreeFormNumber": "(650) 555-0199"},
                "BillAddr": _address("88 Oak Grove Ave", "Menlo Park", "CA", "94025"),
                "DefaultTaxCodeRef": {"value": "3"},
            },
        ),
        "summit": _customer(
            company,
            {
                "DisplayName": "Summit Outdoor Supply",
                "CompanyName": "Summit Outdoor Supply Co.",
                "PrimaryEmailAddr": {"Address": "payables@summitoutdoor.example"},
                "BillAddr": _address("1200 Harrison St", "Oakland", "CA", "94612"),
                "SalesTermRef": {"value": "2"},
                "DefaultTaxCodeRef": {"value": "3"},
            },
        ),
    }
    employees = {
        "emily": company.create(
            "Employee",
            {
                "GivenName": "Emily",
                "FamilyName": "Carter",
                "PrimaryEmailAddr": {"Address": "emily@bayside.example"},
                "EmployeeNumber": "E-101",
                "BillableTime": True,
                "BillRate": 150,
                "HiredDate": "2021-03-01",
            },
        )["Id"],
        "marcus": company.create(
            "Employee",
            {
                "GivenName": "Marcus",
                "FamilyName": "Lee",
                "PrimaryEmailAddr": {"Address": "marcus@bayside.example"},
                "EmployeeNumber": "E-102",
                "BillableTime": True,
                "BillRate": 95,
                "HiredDate": "2022-08-15",
            },
        )["Id"],
    }

    at(18)()
    invoices: dict[str, str] = {}
    invoices["open"] = _sales(
        company,
        "Invoice",
        customers["acme"],
        "1001",
        today - timedelta(days=10),
        [
            ("3", 1, "450", "Site survey and soil analysis"),
            ("4", 12, "150", "Landscape design, 12 hours"),
            ("7", 4, "129", "Cedar planter boxes"),
        ],
    )
    at(17)()
    invoices["partially_paid"] = _sales(
        company,
        "Invoice",
        customers["cafe"],
        "1002",
        today - timedelta(days=25),
        [
            ("4", 6, "150", "Patio redesign"),
            ("8", 10, "59.99", "Solar path lights"),
        ],
        discount_percent="10",
    )
    invoices["paid"] = _sales(
        company,
        "Invoice",
        customers["greenleaf"],
        "1003",
        today - timedelta(days=40),
        [
            ("5", 8, "95", "Volunteer day coordination"),
        ],
    )
    invoices["overdue"] = _sales(
        company,
        "Invoice",
        customers["summit"],
        "1004",
        today - timedelta(days=50),
        [
            ("3", 2, "450", "Two store-front surveys"),
            ("7", 10, "129", "Planter boxes for display"),
        ],
    )
    invoices["foreign_currency"] = _sales(
        company,
        "Invoice",
        customers["nordlicht"],
        "1005",
        today - timedelta(days=8),
        [("4", 20, "140", "Remote design consultation (EUR)")],
    )

    at(16)()
    payments = {
        "partial": company.create(
            "Payment",
            {
                "CustomerRef": {"value": customers["cafe"]},
                "TotalAmt": "500.00",
                "TxnDate": (today - timedelta(days=12)).isoformat(),
                "PaymentRefNum": "CHK-2291",
                "Line": [
                    {
                        "Amount": "500.00",
                        "LinkedTxn": [{"TxnId": invoices["partially_paid"], "TxnType": "Invoice"}],
                    }
                ],
            },
        )["Id"],
    }
    paid_total = company.read("Invoice", invoices["paid"])["TotalAmt"]
    payments["full"] = company.create(
        "Payment",
        {
            "CustomerRef": {"value": customers["greenleaf"]},
            "TotalAmt": paid_total,
            "TxnDate": (today - timedelta(days=35)).isoformat(),
            "PaymentRefNum": "ACH-88123",
            "Line": [
                {"Amount": paid_total, "LinkedTxn": [{"TxnId": invoices["paid"], "TxnType": "Invoice"}]}
            ],
        },
    )["Id"]

    at(15)()
    estimates = {
        "accepted": _sales(
            company,
            "Estimate",
            customers["patel"],
            "E-1001",
            today - timedelta(days=6),
            [
                ("3", 1, "450", "Backyard survey"),
                ("4", 16, "150", "Garden design"),
                ("8", 4, "59.99", "Path lights"),
            ],
            status="Accepted",
            accepted_by="Priya Patel",
            accepted_date=today - timedelta(days=2),
        ),
        "pending": _sales(
            company,
            "Estimate",
            customers["acme"],
            "E-1002",
            today - timedelta(days=3),
            [
                ("6", 1, "2400", "Quarterly maintenance plan"),
            ],
            status="Pending",
            expiration=today + timedelta(days=27),
        ),
    }

    at(14)()
    time_activities = [
        company.create(
            "TimeActivity",
            {
                "TxnDate": (today - timedelta(days=days)).isoformat(),
                "NameOf": "Employee",
                "EmployeeRef": {"value": employee},
                "CustomerRef": {"value": customer},
                "ItemRef": {"value": "4"},
                "BillableStatus": "Billable",
                "HourlyRate": rate,
                "Hours": hours,
                "Minutes": minutes,
                "Description": description,
            },
        )["Id"]
        for days, employee, customer, rate, hours, minutes, description in (
            (3, employees["emily"], customers["acme"], 150, 6, 30, "Planting plan revisions"),
            (2, employees["marcus"], customers["patel"], 95, 2, 0, "Client walkthrough"),
        )
    ]
    company.now_override = None
    company.changes.clear()
    return {
        "customers": customers,
        "employees": employees,
        "invoices": invoices,
        "payments": payments,
        "estimates": estimates,
        "time_activities": time_activities,
    }


def _customer(company: Company, fields: JsonObject) -> str:
    return str(company.create("Customer", fields)["Id"])


def _sales(
    company: Company,
    entity: str,
    customer_id: str,
    doc_number: str,
    txn_date: date,
    lines: list[tuple[str, int, str, str]],
    *,
    discount_percent: str | None = None,
    status: str | None = None,
    accepted_by: str | None = None,
    accepted_date: date | None = None,
    expiration: date | None = None,
) -> str:
    body: JsonObject = {
        "CustomerRef": {"value": customer_id},
        "DocNumber": doc_number,
        "TxnDate": txn_date.isoformat(),
        "Line": [
            {
                "Description": description,
                "Amount": str(Decimal(price) * qty),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price},
            }
            for item, qty, price, description in lines
        ],
    }
    if discount_percent:
        body["Line"].append(
            {
                "DetailType": "DiscountLineDetail",
                "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": discount_percent},
            }
        )
    if status:
        body["TxnStatus"] = status
    if accepted_by:
        body["AcceptedBy"] = accepted_by
    if accepted_date:
        body["AcceptedDate"] = accepted_date.isoformat()
    if expiration:
        body["ExpirationDate"] = expiration.isoformat()
    return str(company.create(entity, body)["Id"])


AccountRow = tuple[str, str, str, str, str]
"""(id, name, AccountType, AccountSubType, Classification)"""


def insert_accounts(company: Company, rows: Iterable[AccountRow], currency: JsonObject) -> None:
    """The company's chart of accounts (every demo company has one in its home currency)."""
    for account_id, name, account_type, sub_type, classification in rows:
        company.insert_reference_data(
            "Account",
            {
                "Id": account_id,
                "Name": name,
                "FullyQualifiedName": name,
                "Active": True,
                "SubAccount": False,
                "AccountType": account_type,
                "AccountSubType": sub_type,
                "Classification": classification,
                "CurrentBalance": Decimal(0),
                "CurrencyRef": currency,
            },
        )


def insert_terms(company: Company, rows: Iterable[tuple[str, str, int]]) -> None:
    """(id, name, due days) payment terms."""
    for term_id, name, days in rows:
        company.insert_reference_data(
            "Term", {"Id": term_id, "Name": name, "Active": True, "Type": "STANDARD", "DueDays": days}
        )


def insert_payment_methods(company: Company, rows: Iterable[tuple[str, str, str]]) -> None:
    """(id, name, Type) payment methods."""
    for method_id, name, kind in rows:
        company.insert_reference_data(
            "PaymentMethod", {"Id": method_id, "Name": name, "Active": True, "Type": kind}
        )


def preferences(
    *,
    fiscal_month: str,
    book_close_date: str,
    tax_prefs: JsonObject,
    home_currency: str,
    extra: JsonObject | None = None,
) -> JsonObject:
    """A demo company's Preferences: what the demo companies share, and what their country changes
    (fiscal year, tax, home currency); ``extra`` sections come after the sales-form ones."""
    return {
        "Id": "1",
        "AccountingInfoPrefs": {
            "FirstMonthOfFiscalYear": fiscal_month,
            "TaxYearMonth": fiscal_month,
            "ClassTrackingPerTxn": False,
            "TrackDepartments": False,
            "CustomerTerminology": "Customers",
            "BookCloseDate": book_close_date,
        },
        "ProductAndServicesPrefs": {
            "ForSales": True,
            "ForPurchase": True,
            "QuantityWithPriceAndRate": True,
            "QuantityOnHand": True,
        },
        "SalesFormsPrefs": {
            "CustomTxnNumbers": True,
            "AllowDeposit": True,
            "AllowDiscount": True,
            "AllowEstimates": True,
            "AllowServiceDate": True,
            "AllowShipping": False,
            "DefaultTerms": {"value": "3"},
            "DefaultDiscountAccount": "7",
            "AutoApplyCredit": True,
            "AutoApplyPayments": True,
        },
        **(extra or {}),
        "TaxPrefs": tax_prefs,
        "CurrencyPrefs": {"MultiCurrencyEnabled": True, "HomeCurrency": {"value": home_currency}},
    }


def _reference_data(company: Company, today: date) -> None:
    accounts = [
        ("1", "Services", "Income", "ServiceFeeIncome", "Revenue"),
        ("2", "Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue"),
        ("3", "Inventory Asset", "Other Current Asset", "Inventory", "Asset"),
        ("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
        ("5", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense"),
        ("6", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset"),
        ("7", "Discounts given", "Income", "DiscountsRefundsGiven", "Revenue"),
        ("8", "Board of Equalization Payable", "Other Current Liability", "SalesTaxPayable", "Liability"),
    ]
    insert_accounts(company, accounts, {"value": "USD", "name": "United States Dollar"})
    insert_terms(
        company, (("1", "Due on receipt", 0), ("2", "Net 15", 15), ("3", "Net 30", 30), ("4", "Net 60", 60))
    )
    insert_payment_methods(
        company,
        (("1", "Cash", "NON_CREDIT_CARD"), ("2", "Check", "NON_CREDIT_CARD"), ("3", "Visa", "CREDIT_CARD")),
    )
    for rate_id, name, value in (("1", "California", "7.25"), ("2", "San Francisco District", "1.375")):
        company.insert_reference_data(
            "TaxRate",
            {
                "Id": rate_id,
                "Name": name,
                "Description": "Sales Tax",
                "Active": True,
                "RateValue": Decimal(value),
                "AgencyRef": {"value": "1"},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            },
        )
    company.insert_reference_data(
        "TaxCode",
        {
            "Id": "TAX",
            "Name": "TAX",
            "Description": "TAX",
            "Active": True,
            "Taxable": True,
            "TaxGroup": False,
        },
    )
    company.insert_reference_data(
        "TaxCode",
        {
            "Id": "NON",
            "Name": "NON",
            "Description": "NON",
            "Active": True,
            "Taxable": False,
            "TaxGroup": False,
        },
    )
    company.insert_reference_data(
        "TaxCode",
        {
            "Id": "3",
            "Name": "San Francisco",
            "Description": "California + San Francisco district sales tax",
            "Active": True,
            "Taxable": True,
            "TaxGroup": True,
            "SalesTaxRateList": {
                "TaxRateDetail": [
                    {
                        "TaxRateRef": {"value": "1", "name": "California"},
                        "TaxTypeApplicable": "TaxOnAmount",
                        "TaxOrder": 0,
                    },
                    {
                        "TaxRateRef": {"value": "2", "name": "San Francisco District"},
                        "TaxTypeApplicable": "TaxOnAmount",
                        "TaxOrder": 0,
                    },
                ]
            },
            "PurchaseTaxRateList": {"TaxRateDetail": []},
        },
    )
    company.insert_reference_data(
        "CompanyInfo",
        {
            "Id": "1",
            "CompanyName": COMPANY_NAME,
            "LegalName": COMPANY_NAME,
            "CompanyAddr": _address("1 Ferry Building, Suite 250", "San Francisco", "CA", "94111", "US"),
            "LegalAddr": _address("1 Ferry Building, Suite 250", "San Francisco", "CA", "94111", "US"),
            "CustomerCommunicationAddr": _address(
                "1 Ferry Building, Suite 250", "San Francisco", "CA", "94111", "US"
            ),
            "PrimaryPhone": {"FreeFormNumber": "(415) 555-0100"},
            "Email": {"Address": "books@bayside.example"},
            "WebAddr": {"URI": "https://bayside-garden.example"},
            "CompanyStartDate": "2019-01-07",
            "FiscalYearStartMonth": "January",
            "Country": "US",
            "SupportedLanguages": "en",
            "DefaultTimeZone": "America/Los_Angeles",
            "NameValue": [
                {"Name": "NeoEnabled", "Value": "true"},
                {"Name": "IndustryType", "Value": "Landscaping Services"},
                {"Name": "SubscriptionStatus", "Value": "PAID"},
                {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
            ],
        },
    )
    company.insert_reference_data(
        "Preferences",
        preferences(
            fiscal_month="January",
            book_close_date=f"{today.year - 1}-12-31",
            extra={
                "TimeTrackingPrefs": {
                    "UseServices": True,
                    "BillCustomers": True,
                    "TimeTrackingEnabled": True,
                    "DefaultTimeItem": {"value": "4"},
                    "WorkWeekStartDate": "Monday",
                    "MarkTimeEntriesBillable": True,
                }
            },
            tax_prefs={"UsingSalesTax": True, "TaxGroupCodeRef": {"value": "3"}},
            home_currency="USD",
        ),
    )
    items = [
        ("Services", "Service", None, "0", "1", None),
        ("Hours", "Service", None, "0", "1", None),
        ("Site Survey", "Service", "SVC-SURVEY", "450", "1", None),
        ("Landscape Design", "Service", "SVC-DESIGN-HR", "150", "1", None),
        ("Project Management", "Service", "SVC-PM-HR", "95", "1", None),
        ("Maintenance Plan (quarterly)", "Service", "SVC-MAINT-Q", "2400", "1", None),
        ("Cedar Planter Box 24in", "Inventory", "PLN-CED-24", "129", "2", "60"),
        ("Solar Path Light 6-pack", "Inventory", "LGT-SOL-6", "59.99", "2", "140"),
        # Added after the items above, so their ids (referenced by the history below) stay as they are.
        ("Installation", "Service", "INSTALL", "50", "1", None),
        ("Gardening", "Service", "GARDEN", "40", "1", None),
        ("Rock Fountain", "Inventory", "ROCKFTN", "275", "2", "12"),
        ("Sprinkler Heads", "Inventory", "SPRHEAD", "2", "2", "400"),
        ("Sprinkler Pipes", "Inventory", "SPRPIPE", "4", "2", "250"),
        ("Pump", "Inventory", "PUMP", "15", "2", "30"),
    ]
    for name, item_type, sku, price, income, quantity in items:
        item: JsonObject = {
            "Name": name,
            "Type": item_type,
            "UnitPrice": price,
            "IncomeAccountRef": {"value": income},
        }
        if sku:
            item["Sku"] = sku
        if item_type == "Inventory":
            item.update(
                {
                    "Taxable": True,
                    "QtyOnHand": quantity,
                    "InvStartDate": (today - timedelta(days=400)).isoformat(),
                    "AssetAccountRef": {"value": "3"},
                    "ExpenseAccountRef": {"value": "5"},
                    "Description": f"{name} (stocked)",
                    "PurchaseCost": str(Decimal(price) / 2),
                }
            )
        company.create("Item", item)


def demo_activity_step(company: Company, step: int) -> dict[str, Any]:
    """One realistic change, cycling through: a new invoice, a payment on the oldest open invoice, an
    estimate, a moved due date. Returns what happened (entity, id, operation)."""
    customers = [obj for obj in company.all("Customer") if obj.get("Active", True)]
    home_customers = [c for c in customers if c.get("CurrencyRef", {}).get("value") == company.home_currency]
    customer = home_customers[step % len(home_customers)]
    kind = step % 4
    if kind == 0:
        # Every other new invoice is entered late, already past its due date (a bookkeeper catching up):
        # the follow-up flow's meetings have something to do in the demo.
        late: dict[str, Any] = {}
        if (step // 4) % 2 == 1:
            today = company.today()
            late = {
                "TxnDate": (today - timedelta(days=40)).isoformat(),
                "DueDate": (today - timedelta(days=10)).isoformat(),
            }
        invoice = company.create(
            "Invoice",
            {
                **late,
                "CustomerRef": {"value": customer["Id"]},
                "AutoDocNumber": True,
                "Line": [
                    {
                        "Amount": str(150 * (2 + step % 5)),
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": "4"},
                            "Qty": 2 + step % 5,
                            "UnitPrice": 150,
                        },
                    },
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "8"}, "Qty": 1 + step % 3},
                    },
                ],
            },
        )
        return {"entity": "Invoice", "id": invoice["Id"], "operation": "Create"}
    open_invoices = sorted(
        (
            inv
            for inv in company.all("Invoice")
            if Decimal(inv.get("Balance", 0)) > 0 and inv["CurrencyRef"]["value"] == company.home_currency
        ),
        key=lambda inv: (inv["TxnDate"], int(inv["Id"])),
    )
    if kind == 1 and open_invoices:
        invoice = open_invoices[0]
        balance = Decimal(invoice["Balance"])
        amount = balance if step % 8 == 1 else (balance / 2).quantize(Decimal("0.01"))
        payment = company.create(
            "Payment",
            {
                "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": str(amount),
                "Line": [
                    {"Amount": str(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
                ],
            },
        )
        return {"entity": "Payment", "id": payment["Id"], "operation": "Create"}
    if kind == 2:
        estimate = company.create(
            "Estimate",
            {
                "CustomerRef": {"value": customer["Id"]},
                "AutoDocNumber": True,
                "Line": [
                    {
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": "3"}, "Qty": 1},
                    }
                ],
            },
        )
        return {"entity": "Estimate", "id": estimate["Id"], "operation": "Create"}
    if open_invoices:
        invoice = open_invoices[-1]
        due = datetime.fromisoformat(invoice["DueDate"]).date() + timedelta(days=7)
        updated = company.update(
            "Invoice",
            {
                "Id": invoice["Id"],
                "SyncToken": invoice["SyncToken"],
                "sparse": True,
                "DueDate": due.isoformat(),
            },
        )
        return {"entity": "Invoice", "id": updated["Id"], "operation": "Update"}
    return demo_activity_step(company, step + 1)
