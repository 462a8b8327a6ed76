"""The QBO client's one-page reads and counts (the backfill's paging), against the QBO sandbox."""

from __future__ import annotations

import pytest

from ledgerlink.qbo.client import QboClient
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration.test_deal_sync_support import Capture, assert_qbo_request_conforms
from tests.unit.qbo.conftest import company


def test_pages_in_creation_order_follow_each_other_and_count_gives_the_total(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given the demo company's invoices
    with qbo_sandbox.sandbox.lock:
        expected = len(company(qbo_sandbox).objects["Invoice"])
    statement = "select * from Invoice ORDERBY MetaData.CreateTime"
    # when they are read two at a time, and counted
    pages = [client.query_page(DEMO_REALM_ID, statement, start, 2) for start in range(1, expected + 2, 2)]
    total = client.count(DEMO_REALM_ID, "select count(*) from Invoice")
    # then the pages hold every invoice once, in creation order, each page one call
    rows = [row for page in pages for row in page]
    assert len({row["Id"] for row in rows}) == len(rows) == expected == total
    created = [row["MetaData"]["CreateTime"] for row in rows]
    assert created == sorted(created)
    sent = capture.to(qbo_sandbox.url)
    assert len(sent) == len(pages) + 1 and client.calls == len(pages) + 1
    assert sent[0].body == b"select * from Invoice ORDERBY MetaData.CreateTime STARTPOSITION 1 MAXRESULTS 2"
    for each in sent:
        assert_qbo_request_conforms(each)


def test_a_page_outside_qbo_paging_is_refused_before_any_call(client: QboClient) -> None:
    with pytest.raises(ValueError, match="STARTPOSITION"):
        client.query_page(DEMO_REALM_ID, "select * from Invoice", 0)
    with pytest.raises(ValueError, match="MAXRESULTS"):
        client.query_page(DEMO_REALM_ID, "select * from Invoice", 1, 1001)
    assert client.calls == 0
