"""QBO sandbox: the query language (operators, ordering, paging, count, limits, errors) over the demo data.

Demo data: customers 1 Acme Robotics Inc., 2 Bluebird Café, 3 Bluebird Catering (2 and 3 share
billing@bluebird.example), 4 Nordlicht Gartenbau GmbH (EUR), 5 Greenleaf Community Garden, 6 Priya Patel,
7 Summit Outdoor Supply; invoices 1-5 (DocNumber 1001-1005) with TotalAmt 2810.51, 1401.65, 760.00,
2301.27, 2800.00 and Balance 2810.51, 901.65, 0, 2301.27, 2800.00.
"""

from __future__ import annotations

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.qbo_support import QboApi, fault


def _ids(api: QboApi, statement: str, entity: str) -> list[str]:
    return [row["Id"] for row in api.query_rows(statement, entity)]


@pytest.mark.parametrize(
    ("statement", "entity", "expected"),
    [
        ("select * from Customer where DisplayName = 'Bluebird Café'", "Customer", ["2"]),
        ("select * from Customer where DisplayName = 'bluebird café'", "Customer", ["2"]),
        ("select * from Invoice where TotalAmt > '2000'", "Invoice", ["1", "4", "5"]),
        ("select * from Invoice where Balance < '1000'", "Invoice", ["2", "3"]),
        ("select * from Invoice where TotalAmt >= '2800' and TotalAmt <= '2810.51'", "Invoice", ["1", "5"]),
        ("select * from Invoice where Balance != '0'", "Invoice", ["1", "2", "4", "5"]),
        ("select * from Customer where Id in ('1', '3', '99')", "Customer", ["1", "3"]),
        ("select * from Customer where DisplayName like 'Bluebird%'", "Customer", ["2", "3"]),
        ("select * from Customer where DisplayName like '%garden%'", "Customer", ["5"]),
        (
            "select * from Customer where PrimaryEmailAddr = 'billing@bluebird.example'",
            "Customer",
            ["2", "3"],
        ),
        ("select * from Invoice where CustomerRef = '2' and Balance > '0'", "Invoice", ["2"]),
        ("select * from Invoice where DocNumber in ('1002', '1004')", "Invoice", ["2", "4"]),
        ("SELECT * FROM invoice WHERE docnumber = '1003'", "Invoice", ["3"]),
        ("select * from Invoice where CurrencyRef = 'EUR'", "Invoice", ["5"]),
        ("select * from Estimate where TxnStatus = 'Accepted'", "Estimate", ["1"]),
        ("select * from Item where Sku = 'PLN-CED-24'", "Item", ["7"]),
        ("select * from Item where Type = 'Inventory'", "Item", ["7", "8", "11", "12", "13", "14"]),
        ("select * from TaxCode where Name = 'San Francisco'", "TaxCode", ["3"]),
    ],
)
def test_where_operators(
    qbo_sandbox: SandboxServer, statement: str, entity: str, expected: list[str]
) -> None:
    assert _ids(QboApi(qbo_sandbox), statement, entity) == expected


def test_orderby_and_paging(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    assert _ids(api, "select * from Invoice orderby TotalAmt desc", "Invoice") == ["1", "5", "4", "2", "3"]
    assert _ids(api, "select * from Invoice ORDER BY TotalAmt", "Invoice") == ["3", "2", "4", "5", "1"]
    assert _ids(api, "select * from Customer orderby DisplayName", "Customer") == [
        "1",
        "2",
        "3",
        "5",
        "4",
        "6",
        "7",
    ]
    page = api.query("select * from Customer orderby Id startposition 3 maxresults 2").json()["QueryResponse"]
    assert [row["Id"] for row in page["Customer"]] == ["3", "4"]
    assert (page["startPosition"], page["maxResults"]) == (3, 2)
    assert api.query("select * from Customer startposition 50").json()["QueryResponse"] == {}


def test_count(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    answer = api.query("select count(*) from Invoice where Balance > '0'").json()
    assert answer["QueryResponse"] == {"totalCount": 4}
    assert api.query("select count(*) from Customer").json()["QueryResponse"] == {"totalCount": 7}


def test_maxresults_defaults_to_100_and_may_not_exceed_1000(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    too_many = api.query("select * from Customer maxresults 1001")
    assert too_many.status_code == 400
    assert (fault(too_many)["code"], fault(too_many)["Message"]) == ("4001", "Invalid query")
    assert api.query("select * from Customer maxresults 1000").status_code == 200
    assert api.query("select * from Customer").json()["QueryResponse"]["maxResults"] == 7


@pytest.mark.parametrize(
    ("statement", "encountered"),
    [
        ("select * from Customer where DisplayName = 'a' or Id = '1'", '" "or" "or "" at line 1, column 48.'),
        ("select from Customer", '" "from" "from "" at line 1, column 8.'),
        ("select * from Invoice where TotalAmt > ", '"<EOF>" at line 1, column 40.'),
        ("select * from Invoice where TxnDate TxnDate", '" <IDENTIFIER> "TxnDate "" at line 1, column 37.'),
    ],
)
def test_syntax_errors_are_query_parser_error_4000(
    qbo_sandbox: SandboxServer, statement: str, encountered: str
) -> None:
    answer = QboApi(qbo_sandbox).query(statement)
    assert answer.status_code == 400
    assert answer.json()["Fault"]["type"] == "ValidationFault"
    error = fault(answer)
    assert (error["code"], error["Message"]) == ("4000", "Error parsing query")
    assert error["Detail"] == "QueryParserError: Encountered " + encountered


def test_unknown_and_unqueryable_properties_are_4001(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    unknown = fault(api.query("select * from Purchase"))
    missing = fault(api.query("select * from Customer where NoSuchField = '1'"))
    private = fault(api.query("select * from Invoice where PrivateNote = 'x'"))
    assert unknown["code"] == missing["code"] == private["code"] == "4001"
    assert missing["Detail"] == "QueryValidationError: Property NoSuchField not found for Entity Customer"
    assert private["Detail"] == "QueryValidationError: property 'PrivateNote' is not queryable"


def test_name_lists_return_active_objects_unless_asked(qbo_sandbox: SandboxServer) -> None:
    # given customer 6 made inactive
    api = QboApi(qbo_sandbox)
    customer = api.read("Customer", "6")
    api.post("customer", {"Id": "6", "SyncToken": customer["SyncToken"], "sparse": True, "Active": False})
    # then plain queries skip it, and asking for inactive (or both) finds it
    assert "6" not in _ids(api, "select * from Customer", "Customer")
    assert _ids(api, "select * from Customer where Active = false", "Customer") == ["6"]
    assert len(_ids(api, "select * from Customer where Active in (true, false)", "Customer")) == 7


def test_nested_metadata_field(qbo_sandbox: SandboxServer) -> None:
    # given one invoice touched now (the demo history is weeks old)
    api = QboApi(qbo_sandbox)
    invoice = api.read("Invoice", "4")
    touched = api.post(
        "invoice", {"Id": "4", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "call"}
    )
    since = touched.json()["Invoice"]["MetaData"]["LastUpdatedTime"]
    # then a query on MetaData.LastUpdatedTime finds only it
    statement = (  # a QBO query statement sent to the sandbox, not SQL
        f"select * from Invoice where MetaData.LastUpdatedTime >= '{since}' orderby MetaData.LastUpdatedTime"  # noqa: S608
    )
    assert _ids(api, statement, "Invoice") == ["4"]


def test_post_query_as_application_text_and_projection(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    answer = requests.post(
        api.url("query"),
        params={"minorversion": "75"},
        data="select Id, DisplayName from Customer where Id = '1'",
        headers={**api.headers(), "Content-Type": "application/text"},
    )
    assert answer.status_code == 200
    row = answer.json()["QueryResponse"]["Customer"][0]
    assert row == {"Id": "1", "DisplayName": "Acme Robotics Inc.", "domain": "QBO", "sparse": True}
    assert "Sku" in api.query_rows("SELECT *, Sku FROM Item WHERE Id = '7'", "Item")[0]
