"""QBO sandbox: Intuit's throttling (per realm, per minute/second, batch) with its 429 body and headers."""

from __future__ import annotations

import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.qbo_support import QboApi, fault

THROTTLED = "message=ThrottleExceeded; errorCode=003001; statusCode=429"


def test_documented_limits_are_the_defaults(qbo_sandbox: SandboxServer) -> None:
    config = requests.get(qbo_sandbox.url + "/_admin/config").json()
    assert config["rate_limits_enabled"] is True
    limits = (
        config["rate_limit_per_minute"],
        config["rate_limit_per_second"],
        config["batch_rate_limit_per_minute"],
    )
    assert limits == (500, 10, 40)
    assert config["batch_max_items"] == 30


def test_429_after_the_per_minute_limit_with_intuits_body_and_retry_after(qbo_sandbox: SandboxServer) -> None:
    # given a realm whose per-minute budget is 5 (500 in production; lowered so the test stays small)
    api = QboApi(qbo_sandbox)
    api.configure(rate_limit_per_minute=5)
    # when a sixth request arrives within the minute
    statuses = [api.get("invoice/1").status_code for _ in range(5)]
    throttled = api.get("invoice/1")
    # then it is refused with Intuit's ThrottleExceeded fault and a Retry-After
    assert statuses == [200] * 5
    assert throttled.status_code == 429
    error = fault(throttled)
    assert (error["code"], error["Message"]) == ("3001", THROTTLED)
    assert error["Detail"] == "The request limit was reached.  Try again later"
    assert throttled.json()["Fault"]["type"] == "SERVICE"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # and once the window has passed (sandbox clock), requests are admitted again
    api.advance_clock(61)
    assert api.get("invoice/1").status_code == 200


def test_limits_are_per_realm(qbo_sandbox: SandboxServer) -> None:
    # given a second company connected to the same app
    api = QboApi(qbo_sandbox)
    added = api.admin("POST", "seed", {"companies": [{"realm_id": "4620816365268362850"}]}).json()[
        "companies"
    ][0]
    other = QboApi(qbo_sandbox)
    other.realm = added["realm_id"]
    other.latest_refresh_token = added["refresh_token"]
    api.configure(rate_limit_per_minute=3)
    # when the first realm spends its budget
    assert [api.get("invoice/1").status_code for _ in range(4)] == [200, 200, 200, 429]
    # then the second realm still has its own
    assert other.get("invoice/1").status_code == 200


def test_batch_requests_have_their_own_limit(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(batch_rate_limit_per_minute=2)
    batch = {"BatchItemRequest": [{"bId": "1", "Query": "select * from Term"}]}
    statuses = [api.post("batch", batch).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api.get("invoice/1").status_code == 200  # other calls are not batch calls


def test_limits_can_be_switched_off(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(rate_limit_per_minute=1, rate_limits_enabled=False)
    assert {api.get("invoice/1").status_code for _ in range(3)} == {200}


def test_injected_faults_answer_in_qbo_shape(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    token = api.access_token
    requests.post(qbo_sandbox.url + "/_admin/faults", json={"kind": "429", "count": 1, "path_prefix": "/v3/"})
    requests.post(qbo_sandbox.url + "/_admin/faults", json={"kind": "503", "count": 1, "path_prefix": "/v3/"})
    throttled = api.get("invoice/1", token=token)
    unavailable = api.get("invoice/1", token=token)
    assert throttled.status_code == 429 and fault(throttled)["code"] == "3001"
    assert throttled.headers["Retry-After"]
    assert unavailable.status_code == 503 and unavailable.json()["Fault"]["type"] == "SystemFault"
    assert api.get("invoice/1", token=token).status_code == 200
