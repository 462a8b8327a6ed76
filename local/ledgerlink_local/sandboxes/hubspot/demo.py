"""The demo portal's base data: a CRM with a few years of history.

- 36 companies with domains (``*.example``), 58 contacts, 10 products, 12 deals (some won or
  lost long ago), associated as HubSpot would (contact->company primary, deal->company primary,
  deal->contact).
- 25 of the records carry the names of the customers in Intuit's public sample company (the
  usual QBO sandbox data: "Amy's Bird Sanctuary", "Kookies by Kathy", "Diego Rodriguez", ...)
  with the emails that sample uses where known (others are made up), so the deal sync can link to them instead of creating
  duplicates. Two QBO customers share one email (Kookies by Kathy, Red Rock Diner); HubSpot
  allows an email on one contact only, so here it belongs to Kathy Kuplis and Red Rock Diner's
  contact has no email: matching must fall back to domain or name. Person customers (Diego
  Rodriguez, ...) are contacts without a company.
- One company outside the US (Maple Leaf Outfitters, Toronto) and one deal in CAD.
- 2 companies and 2 contacts the CRM already had for customers of the QBO sandbox's demo company
  (sandboxes/qbo/demo.py), without qbo_* properties, so the local demo's sync links to them instead of
  creating duplicates (see EXISTING_QBO_DEMO_COMPANIES).

Everything is deterministic: ids, names and dates (offsets from the sandbox clock at reset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ledgerlink_local.sandboxes.hubspot.model import OBJECT_TYPES, ObjectType, instant
from ledgerlink_local.sandboxes.hubspot.store import SOURCE_UI, Portal


@dataclass(frozen=True)
class DemoCustomer:
    company: str | None
    first_name: str
    last_name: str
    email: str | None
    phone: str
    city: str
    state: str
    country: str = "United States"


# Intuit's sample-company customers (names and emails as in that public sample data).
QBO_SAMPLE_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer("Amy's Bird Sanctuary", "Amy", "Lauterbach", "birds@intuit.com", "(650) 555-3311", "Bayshore", "CA"),
    DemoCustomer("Bill's Windsurf Shop", "Bill", "Lucchini", "surf@intuit.com", "(415) 444-6538", "Half Moon Bay", "CA"),
    DemoCustomer("Cool Cars", "Grace", "Pariente", "cool_cars@intuit.com", "(415) 555-9933", "Half Moon Bay", "CA"),
    DemoCustomer(None, "Diego", "Rodriguez", "diego@rodriguez.com", "(650) 555-4477", "Middlefield", "CA"),
    DemoCustomer("Dukes Basketball Camp", "Peter", "Dukes", "dukes_bball@intuit.com", "(520) 420-5638", "Tucson", "AZ"),
    DemoCustomer(None, "Dylan", "Sollfrank", "dylan@sollfrank.example", "(650) 555-0142", "Middlefield", "CA"),
    DemoCustomer("Freeman Sporting Goods", "Sasha", "Tillou", "sporting_goods@intuit.com", "(650) 555-0987", "Middlefield", "CA"),
    DemoCustomer(None, "Geeta", "Kalapatapu", "geeta@kalapatapu.com", "(650) 555-0022", "Middlefield", "CA"),
    DemoCustomer("Gevelber Photography", "Lisa", "Gevelber", "photography@intuit.com", "(415) 222-4345", "San Jose", "CA"),
    DemoCustomer("Jeff's Jalopies", "Jeff", "Chin", "jalopies@intuit.com", "(650) 555-8989", "Middlefield", "CA"),
    DemoCustomer(None, "John", "Melton", "john@melton.com", "(650) 555-5879", "Middlefield", "CA"),
    DemoCustomer(None, "Kate", "Whelan", "kate@whelan.com", "(650) 554-1479", "Middlefield", "CA"),
    DemoCustomer("Kookies by Kathy", "Kathy", "Kuplis", "qbwebsamplecompany@yahoo.com", "(650) 555-7896", "Middlefield", "CA"),
    DemoCustomer(None, "Mark", "Cho", "mark@cho.com", "(650) 554-1479", "Middlefield", "CA"),
    DemoCustomer("Paulsen Medical Supplies", "Kathy", "Paulsen", "medical@intuit.com", "(650) 557-8855", "Middlefield", "CA"),
    DemoCustomer("Pye's Cakes", "Karen", "Pye", "pyescakes@intuit.com", "(973) 555-4652", "South Orange", "NJ"),
    DemoCustomer("Rago Travel Agency", "Nicola", "Rago", "rago_travel@intuit.com", "(650) 555-1596", "Bayshore", "CA"),
    DemoCustomer("Red Rock Diner", "Stephanie", "Martini", None, "(650) 555-4973", "Bayshore", "CA"),
    DemoCustomer("Rondonuwu Fruit and Vegi", "Tim", "Rondonuwu", "rondonuwu@intuit.com", "(650) 555-2645", "Middlefield", "CA"),
    DemoCustomer("Barnett Design", "Shara", "Barnett", "design@intuit.com", "(650) 557-1289", "Sunnyvale", "CA"),
    DemoCustomer("Sonnenschein Family Store", "Russ", "Sonnenschein", "familiystore@intuit.com", "(650) 557-8463", "Middlefield", "CA"),
    DemoCustomer("Sushi by Katsuyuki", "Kata", "Katsuyuki", "sushi@intuit.com", "(505) 570-0147", "Middlefield", "CA"),
    DemoCustomer(None, "Travis", "Waldron", "travis@waldron.com", "(650) 555-9874", "Menlo Park", "CA"),
    DemoCustomer("Video Games by Dan", "Dan", "Gevers", "videogames@intuit.com", "(650) 555-8899", "Middlefield", "CA"),
    DemoCustomer("Weiskopf Consulting", "Nicola", "Weiskopf", "consulting@intuit.com", "(650) 555-1423", "Bayshore", "CA"),
)  # fmt: skip

# Companies that exist only in the CRM (prospects and past customers).
CRM_ONLY_COMPANIES: tuple[tuple[str, str, str, str], ...] = (
    ("Northwind Traders", "Seattle", "WA", "United States"),
    ("Blue Heron Landscaping", "Portland", "OR", "United States"),
    ("Cedar Ridge Builders", "Boise", "ID", "United States"),
    ("Harbor Point Marina", "San Diego", "CA", "United States"),
    ("Summit Peak Outfitters", "Denver", "CO", "United States"),
    ("Golden Gate Plumbing", "San Francisco", "CA", "United States"),
    ("Orchard Valley Farms", "Fresno", "CA", "United States"),
    ("Lakeside Dental Group", "Madison", "WI", "United States"),
    ("Redwood Analytics", "Eureka", "CA", "United States"),
    ("Sierra Solar Co", "Reno", "NV", "United States"),
    ("Coastal Coffee Roasters", "Santa Cruz", "CA", "United States"),
    ("Pinecrest Veterinary Clinic", "Sacramento", "CA", "United States"),
    ("Brightwater Pools", "Phoenix", "AZ", "United States"),
    ("Ironbridge Logistics", "Oakland", "CA", "United States"),
    ("Maple Leaf Outfitters", "Toronto", "ON", "Canada"),
    ("Copperline Electric", "Tucson", "AZ", "United States"),
)
# Records the CRM already had for some of the QBO demo company's customers (sandboxes/qbo/demo.py) before
# LedgerLink was installed: no qbo_* properties, written by the sales team. They exist so the
# local demo's deal sync shows matching (docs/mapping.md#matching) instead of creating every
# customer anew: Summit Outdoor Supply links company by domain and contact by email; Acme
# Robotics (QBO: "Acme Robotics Inc.") links by domain, its name differing only by a legal
# suffix; the Bluebird contact carries the email two QBO customers share (Bluebird Café and
# Bluebird Catering), so it links to one of them only and the other gets no contact link.
# (company, domain, city, state) and (first name, last name, email, job title, company or None).
EXISTING_QBO_DEMO_COMPANIES: tuple[tuple[str, str, str, str], ...] = (
    ("Summit Outdoor Supply", "summitoutdoor.example", "Oakland", "CA"),
    ("Acme Robotics", "acmerobotics.example", "San Francisco", "CA"),
)
EXISTING_QBO_DEMO_CONTACTS: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("Dana", "Whitfield", "payables@summitoutdoor.example", "Accounts Payable", "Summit Outdoor Supply"),
    ("Rosa", "Lindqvist", "billing@bluebird.example", "Bookkeeper", None),
)
FIRST_NAMES = ("Alex", "Jordan", "Morgan", "Casey", "Riley", "Taylor", "Jamie", "Avery", "Quinn", "Parker")
LAST_NAMES = ("Nguyen", "Patel", "Garcia", "Kim", "Schmidt", "Okafor", "Rossi", "Haddad", "Silva", "Novak")
DEMO_PRODUCTS: tuple[tuple[str, str, str], ...] = (
    ("Design", "DESIGN", "75"),
    ("Installation", "INSTALL", "50"),
    ("Gardening", "GARDEN", "40"),
    ("Pest Control", "PEST", "35"),
    ("Maintenance & Repair", "MAINT", "60"),
    ("Hours", "HOURS", "45"),
    ("Rock Fountain", "ROCKFTN", "275"),
    ("Sprinkler Heads", "SPRHEAD", "2"),
    ("Sprinkler Pipes", "SPRPIPE", "4"),
    ("Pump", "PUMP", "15"),
)


def _slug(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def _type(name: str) -> ObjectType:
    return next(t for t in OBJECT_TYPES if t.name == name)


def seed_demo_portal(portal: Portal) -> dict[str, Any]:
    """Fill a fresh portal with the demo data; returns a summary (also part of the docs)."""
    now = portal.clock.now()
    companies, contacts, deals, products = (
        _type("companies"),
        _type("contacts"),
        _type("deals"),
        _type("products"),
    )
    owners = [o.id for o in portal.owners if not o.archived]
    primary_company = portal.association_types.find("HUBSPOT_DEFINED", 1)
    unlabeled_company = portal.association_types.find("HUBSPOT_DEFINED", 279)
    assert primary_company is not None and unlabeled_company is not None
    created_days_ago = 1150
    company_ids: dict[str, str] = {}

    def created() -> Any:
        nonlocal created_days_ago
        created_days_ago -= 11
        return now - timedelta(days=created_days_ago, hours=created_days_ago % 9)

    def link_contact(contact_id: str, company_id: str) -> None:
        portal.associations.add("contacts", contact_id, "companies", company_id, unlabeled_company)
        portal.associations.add("contacts", contact_id, "companies", company_id, primary_company)

    for index, customer in enumerate(QBO_SAMPLE_CUSTOMERS):
        # What the customer's company and contact both carry.
        shared = {
            "phone": customer.phone,
            "city": customer.city,
            "state": customer.state,
            "country": customer.country,
            "lifecyclestage": "customer",
            "hubspot_owner_id": owners[index % len(owners)],
        }
        company_id = None
        if customer.company:
            record = portal.create(
                companies,
                {"name": customer.company, "domain": f"{_slug(customer.company)}.example", **shared},
                source=SOURCE_UI,
                created_at=created(),
            )
            company_id = company_ids[customer.company] = record.id
        properties = {"firstname": customer.first_name, "lastname": customer.last_name, **shared}
        if customer.email:
            properties["email"] = customer.email
        if customer.company:
            properties["company"] = customer.company
        contact = portal.create(contacts, properties, source=SOURCE_UI, created_at=created())
        if company_id:
            link_contact(contact.id, company_id)

    person = 0
    for index, (name, city, state, country) in enumerate(CRM_ONLY_COMPANIES):
        domain = f"{_slug(name)}.example"
        record = portal.create(
            companies,
            {
                "name": name,
                "domain": domain,
                "city": city,
                "state": state,
                "country": country,
                "lifecyclestage": "opportunity" if index % 3 else "lead",
                "numberofemployees": str(12 + index * 7),
                "hubspot_owner_id": owners[index % len(owners)],
            },
            source=SOURCE_UI,
            created_at=created(),
        )
        company_ids[name] = record.id
        for _ in range(2 if index < 15 else 1):
            first, last = FIRST_NAMES[person % 10], LAST_NAMES[(person * 3 + index) % 10]
            person += 1
            contact = portal.create(
                contacts,
                {
                    "firstname": first,
                    "lastname": last,
                    "email": f"{first.lower()}.{last.lower()}@{domain}",
                    "company": name,
                    "jobtitle": ("Owner", "Office Manager", "Controller", "Operations Lead")[person % 4],
                    "city": city,
                    "state": state,
                    "country": country,
                    "lifecyclestage": "lead",
                },
                source=SOURCE_UI,
                created_at=created(),
            )
            link_contact(contact.id, record.id)

    for index, (name, domain, city, state) in enumerate(EXISTING_QBO_DEMO_COMPANIES):
        record = portal.create(
            companies,
            {
                "name": name,
                "domain": domain,
                "city": city,
                "state": state,
                "country": "United States",
                "lifecyclestage": "customer",
                "hubspot_owner_id": owners[index % len(owners)],
            },
            source=SOURCE_UI,
            created_at=created(),
        )
        company_ids[name] = record.id
    for first, last, email, job_title, company_name in EXISTING_QBO_DEMO_CONTACTS:
        properties = {
            "firstname": first,
            "lastname": last,
            "email": email,
            "jobtitle": job_title,
            "lifecyclestage": "customer",
        }
        if company_name:
            properties["company"] = company_name
        contact = portal.create(contacts, properties, source=SOURCE_UI, created_at=created())
        if company_name:
            link_contact(contact.id, company_ids[company_name])

    for name, sku, price in DEMO_PRODUCTS:
        portal.create(
            products,
            {"name": name, "hs_sku": sku, "price": price, "description": f"{name} (catalogue item)"},
            source=SOURCE_UI,
            created_at=now - timedelta(days=1300),
        )

    deal_plan = (
        ("Amy's Bird Sanctuary", "Aviary landscaping", "closedwon", "4200", None, 900),
        ("Cool Cars", "Showroom lighting refresh", "closedwon", "1850", None, 760),
        ("Dukes Basketball Camp", "Court resurfacing", "closedlost", "9600", None, 640),
        ("Freeman Sporting Goods", "Storefront garden", "closedwon", "2250", None, 520),
        ("Northwind Traders", "Warehouse grounds contract", "contractsent", "18000", None, 60),
        ("Blue Heron Landscaping", "Subcontract: irrigation", "qualifiedtobuy", "3400", None, 45),
        ("Harbor Point Marina", "Dock planters", "presentationscheduled", "5100", None, 30),
        ("Sierra Solar Co", "Panel field maintenance", "appointmentscheduled", "7800", None, 20),
        ("Maple Leaf Outfitters", "Patio design", "decisionmakerboughtin", "6400", "CAD", 15),
        ("Paulsen Medical Supplies", "Courtyard redesign", "closedwon", "3150", None, 200),
        ("Pye's Cakes", "Window boxes", "closedlost", "480", None, 150),
        ("Weiskopf Consulting", "Office plants service", "qualifiedtobuy", "960", None, 10),
    )
    primary_deal_company = portal.association_types.find("HUBSPOT_DEFINED", 5)
    unlabeled_deal_company = portal.association_types.find("HUBSPOT_DEFINED", 341)
    deal_contact = portal.association_types.find("HUBSPOT_DEFINED", 3)
    assert primary_deal_company and unlabeled_deal_company and deal_contact
    for index, (company, deal_name, stage, amount, currency, days_ago) in enumerate(deal_plan):
        properties = {
            "dealname": f"{company} - {deal_name}",
            "dealstage": stage,
            "pipeline": "default",
            "amount": amount,
            "closedate": instant(now - timedelta(days=days_ago - 30)),
            "hubspot_owner_id": owners[index % len(owners)],
            "dealtype": "existingbusiness" if index % 2 else "newbusiness",
        }
        if currency:
            properties["deal_currency_code"] = currency
        deal = portal.create(deals, properties, source=SOURCE_UI, created_at=now - timedelta(days=days_ago))
        company_id = company_ids[company]
        portal.associations.add("deals", deal.id, "companies", company_id, unlabeled_deal_company)
        portal.associations.add("deals", deal.id, "companies", company_id, primary_deal_company)
        contact_ids = [to_id for to_id, _ in portal.associations.targets("companies", company_id, "contacts")]
        if contact_ids:
            portal.associations.add("deals", deal.id, "contacts", contact_ids[0], deal_contact)

    return {t.name: len(portal.objects[t.name]) for t in OBJECT_TYPES}
