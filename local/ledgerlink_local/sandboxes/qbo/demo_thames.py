"""The QBO sandbox's second demo company: a UK business (the local stack's "thames" connection).

Thames Valley Gardens Ltd in Reading (UK time, fiscal year from April, home currency GBP, multi-currency
on with EUR and USD, VAT registered):

- customers: three UK businesses, a person, and one in the Netherlands billed in EUR (an export: no UK
  VAT, so not taxable);
- items: the same layout as the US demo company (ids 1-8: "Services", "Hours", four services, two stocked
  goods), so the demo activity works in both; services are VAT-able here (they are in the UK);
- VAT: the codes a UK QBO company carries, by id: 2 "20.0% S" (standard), 4 "0.0% Z" (zero-rated),
  6 "Exempt", 8 "5.0% R" (reduced); a line without TaxCodeRef gets 20.0% S (or 0.0% Z for a
  non-taxable customer or item). No TAX/NON codes: those exist in US companies only;
- history, older than the CDC window: an open, a partially paid, a paid and an overdue invoice in GBP,
  one EUR invoice.

What the sandbox simplifies: the transaction's tax is computed from one code (the default 20.0% S) over
the lines whose code is taxable, so an invoice mixing 20 % and 5 % lines is taxed at 20 % throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ledgerlink_local.sandboxes.qbo.demo import (
    SEED_AGE_DAYS,
    _customer,
    _sales,
    insert_accounts,
    insert_payment_methods,
    insert_terms,
    preferences,
)
from ledgerlink_local.sandboxes.qbo.model import Company, JsonObject

COMPANY_NAME = "Thames Valley Gardens Ltd"
TIME_ZONE = "Europe/London"
HOME_CURRENCY = "GBP"
# QBO UK's VAT codes (ids as a UK company has them) and their sales rates.
STANDARD_RATE_CODE = "2"
ZERO_RATE_CODE = "4"
VAT_CODES: tuple[tuple[str, str, str, bool, str | None], ...] = (
    # (code id, name, description, taxable, sales rate id)
    ("2", "20.0% S", "Standard rated sales (20%)", True, "1"),
    ("4", "0.0% Z", "Zero-rated sales", False, "3"),
    ("6", "Exempt", "Exempt from VAT", False, None),
    ("8", "5.0% R", "Reduced rate sales (5%)", True, "5"),
)
VAT_RATES: tuple[tuple[str, str, str], ...] = (
    ("1", "20.0% S", "20"),
    ("3", "0.0% Z", "0"),
    ("5", "5.0% R", "5"),
)


def _address(line1: str, city: str, postal: str, country: str = "United Kingdom") -> JsonObject:
    return {"Line1": line1, "City": city, "PostalCode": postal, "Country": country}


def seed_thames_company(company: Company) -> dict[str, Any]:
    """Fill an empty company with the UK demo data; returns the ids of the notable objects."""
    now = company.now()
    today = company.today()

    def at(days_ago: int) -> Callable[[], None]:
        def move() -> None:
            company.now_override = now - timedelta(days=SEED_AGE_DAYS + days_ago)

        return move

    at(20)()
    company.home_currency = HOME_CURRENCY
    company.currencies.clear()
    company.currencies.update(
        {
            "GBP": ("British Pound Sterling", Decimal(1)),
            "EUR": ("Euro", Decimal("0.8541")),
            "USD": ("United States Dollar", Decimal("0.7893")),
        }
    )
    company.line_tax_codes = (STANDARD_RATE_CODE, ZERO_RATE_CODE)
    _reference_data(company, today)

    at(19)()
    customers = {
        "riverside": _customer(
            company,
            {
                "DisplayName": "Riverside Lettings Ltd",
                "CompanyName": "Riverside Lettings Ltd",
                "PrimaryEmailAddr": {"Address": "accounts@riversidelettings.example"},
                "BillAddr": _address("14 Kings Road", "Reading", "RG1 3AA"),
                "SalesTermRef": {"value": "3"},
            },
        ),
        "henley": _customer(
            company,
            {
                "DisplayName": "Henley Boat Club",
                "CompanyName": "Henley Boat Club",
                "PrimaryEmailAddr": {"Address": "treasurer@henleyboats.example"},
                "BillAddr": _address("Thames Side", "Henley-on-Thames", "RG9 2LJ"),
                "SalesTermRef": {"value": "2"},
            },
        ),
        "marlow": _customer(
            company,
            {
                "DisplayName": "Marlow Tea Rooms",
                "CompanyName": "Marlow Tea Rooms Ltd",
                "PrimaryEmailAddr": {"Address": "hello@marlowtearooms.example"},
                "BillAddr": _address("3 High Street", "Marlow", "SL7 1AX"),
                "SalesTermRef": {"value": "3"},
            },
        ),
        "okafor": _customer(
            company,
            {
                "GivenName": "Grace",
                "FamilyName": "Okafor",
                "PrimaryEmailAddr": {"Address": "grace.okafor@mail.example"},
                "BillAddr": _address("22 Caversham Road", "Reading", "RG1 8AH"),
            },
        ),
        "tulp": _customer(
            company,
            {
                "DisplayName": "De Tulp Hoveniers B.V.",
                "CompanyName": "De Tulp Hoveniers B.V.",
                "PrimaryEmailAddr": {"Address": "administratie@detulp.example"},
                "BillAddr": {
                    "Line1": "Keizersgracht 221",
                    "City": "Amsterdam",
                    "PostalCode": "1016 DV",
                    "Country": "Netherlands",
                    "CountryCode": "NL",
                },
                "CurrencyRef": {"value": "EUR"},
                "Taxable": False,
                "SalesTermRef": {"value": "3"},
            },
        ),
    }

    at(18)()
    invoices: dict[str, str] = {
        "open": _sales(
            company,
            "Invoice",
            customers["riverside"],
            "TVG-1001",
            today - timedelta(days=9),
            [("3", 1, "380", "Site survey, three gardens"), ("4", 10, "120", "Planting design, 10 hours")],
        ),
        "partially_paid": _sales(
            company,
            "Invoice",
            customers["marlow"],
            "TVG-1002",
            today - timedelta(days=24),
            [("4", 5, "120", "Courtyard redesign"), ("8", 6, "45", "Solar lanterns")],
        ),
        "paid": _sales(
            company,
            "Invoice",
            customers["henley"],
            "TVG-1003",
            today - timedelta(days=38),
            [("5", 6, "80", "Riverbank planting, project management")],
        ),
        "overdue": _sales(
            company,
            "Invoice",
            customers["henley"],
            "TVG-1004",
            today - timedelta(days=52),
            [("7", 8, "95", "Oak planters for the terrace")],
        ),
        "foreign_currency": _sales(
            company,
            "Invoice",
            customers["tulp"],
            "TVG-1005",
            today - timedelta(days=7),
            [("4", 16, "135", "Design consultation (EUR)")],
        ),
    }

    at(16)()
    partial = company.create(
        "Payment",
        {
            "CustomerRef": {"value": customers["marlow"]},
            "TotalAmt": "300.00",
            "TxnDate": (today - timedelta(days=10)).isoformat(),
            "PaymentRefNum": "BACS-4471",
            "Line": [
                {
                    "Amount": "300.00",
                    "LinkedTxn": [{"TxnId": invoices["partially_paid"], "TxnType": "Invoice"}],
                }
            ],
        },
    )["Id"]
    paid_total = company.read("Invoice", invoices["paid"])["TotalAmt"]
    full = company.create(
        "Payment",
        {
            "CustomerRef": {"value": customers["henley"]},
            "TotalAmt": paid_total,
            "TxnDate": (today - timedelta(days=33)).isoformat(),
            "PaymentRefNum": "BACS-4390",
            "Line": [
                {"Amount": paid_total, "LinkedTxn": [{"TxnId": invoices["paid"], "TxnType": "Invoice"}]}
            ],
        },
    )["Id"]
    company.now_override = None
    company.changes.clear()
    return {"customers": customers, "invoices": invoices, "payments": {"partial": partial, "full": full}}


def _reference_data(company: Company, today: date) -> None:
    gbp = {"value": "GBP", "name": "British Pound Sterling"}
    insert_accounts(
        company,
        (
            ("1", "Sales", "Income", "SalesOfProductIncome", "Revenue"),
            ("2", "Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue"),
            ("3", "Stock Asset", "Other Current Asset", "Inventory", "Asset"),
            ("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset"),
            ("5", "Cost of Sales", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense"),
            ("6", "Debtors", "Accounts Receivable", "AccountsReceivable", "Asset"),
            ("7", "Discounts given", "Income", "DiscountsRefundsGiven", "Revenue"),
            ("8", "VAT Control", "Other Current Liability", "GlobalTaxPayable", "Liability"),
        ),
        gbp,
    )
    insert_terms(company, (("1", "Due on receipt", 0), ("2", "Net 15", 15), ("3", "Net 30", 30)))
    insert_payment_methods(company, (("1", "Cash", "NON_CREDIT_CARD"), ("2", "BACS", "NON_CREDIT_CARD")))
    for rate_id, name, value in VAT_RATES:
        company.insert_reference_data(
            "TaxRate",
            {
                "Id": rate_id,
                "Name": name,
                "Description": name,
                "Active": True,
                "RateValue": Decimal(value),
                "AgencyRef": {"value": "1"},
                "SpecialTaxType": "NONE",
                "DisplayType": "ReadOnly",
            },
        )
    for code_id, name, description, taxable, sales_rate in VAT_CODES:
        rates = (
            [
                {
                    "TaxRateRef": {"value": sales_rate, "name": name},
                    "TaxTypeApplicable": "TaxOnAmount",
                    "TaxOrder": 0,
                }
            ]
            if sales_rate
            else []
        )
        company.insert_reference_data(
            "TaxCode",
            {
                "Id": code_id,
                "Name": name,
                "Description": description,
                "Active": True,
                "Taxable": taxable,
                "TaxGroup": True,
                "SalesTaxRateList": {"TaxRateDetail": rates},
                "PurchaseTaxRateList": {"TaxRateDetail": []},
            },
        )
    office = _address("Unit 4, Abbey Wharf", "Reading", "RG1 3HT", "GB")
    company.insert_reference_data(
        "CompanyInfo",
        {
            "Id": "1",
            "CompanyName": COMPANY_NAME,
            "LegalName": COMPANY_NAME,
            "CompanyAddr": office,
            "LegalAddr": office,
            "CustomerCommunicationAddr": office,
            "PrimaryPhone": {"FreeFormNumber": "0118 496 0321"},
            "Email": {"Address": "accounts@thamesvalleygardens.example"},
            "WebAddr": {"URI": "https://thamesvalleygardens.example"},
            "CompanyStartDate": "2020-04-06",
            "FiscalYearStartMonth": "April",
            "Country": "GB",
            "SupportedLanguages": "en",
            "DefaultTimeZone": TIME_ZONE,
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
            fiscal_month="April",
            book_close_date=f"{today.year - 1}-03-31",
            tax_prefs={"UsingSalesTax": True, "PartnerTaxEnabled": True, "TaxGroupCodeRef": {"value": "2"}},
            home_currency=HOME_CURRENCY,
        ),
    )
    for name, item_type, sku, price, income, quantity in (
        ("Services", "Service", None, "0", "1", None),
        ("Hours", "Service", None, "0", "1", None),
        ("Site Survey", "Service", "TVG-SURVEY", "380", "1", None),
        ("Planting Design", "Service", "TVG-DESIGN-HR", "120", "1", None),
        ("Project Management", "Service", "TVG-PM-HR", "80", "1", None),
        ("Maintenance Plan (quarterly)", "Service", "TVG-MAINT-Q", "1950", "1", None),
        ("Oak Planter 60cm", "Inventory", "TVG-OAK-60", "95", "2", "40"),
        ("Solar Lantern", "Inventory", "TVG-LANTERN", "45", "2", "120"),
    ):
        item: JsonObject = {
            "Name": name,
            "Type": item_type,
            "UnitPrice": price,
            "IncomeAccountRef": {"value": income},
            "Taxable": True,  # VAT applies to services too
            "SalesTaxCodeRef": {"value": STANDARD_RATE_CODE},
        }
        if sku:
            item["Sku"] = sku
        if item_type == "Inventory":
            item.update(
                {
                    "QtyOnHand": quantity,
                    "InvStartDate": (today - timedelta(days=400)).isoformat(),
                    "AssetAccountRef": {"value": "3"},
                    "ExpenseAccountRef": {"value": "5"},
                    "Description": f"{name} (stocked)",
                    "PurchaseCost": str(Decimal(price) / 2),
                }
            )
        company.create("Item", item)
