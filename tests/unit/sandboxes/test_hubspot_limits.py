"""HubSpot sandbox: bearer-token auth, rate limits (10-second, daily, search), their headers and
429 bodies, fault injection with HubSpot's error shapes."""

from __future__ import annotations

import pytest

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot

__all__ = ["hubspot"]

RATE_HEADERS = (
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Secondly",
    "X-HubSpot-RateLimit-Secondly-Remaining",
)


@pytest.mark.parametrize("token", [None, "pat-na1-not-the-right-token", "Basic abc"])
def test_missing_or_unknown_token_is_hubspots_401(hubspot_sandbox: SandboxServer, token: str | None) -> None:
    client = HubSpotApi(hubspot_sandbox, token=None)
    headers = {"Authorization": token if token == "Basic abc" else f"Bearer {token}"} if token else {}
    answer = checked("deals.json", client.get("/crm/v3/objects/deals", headers=headers), 401).json()
    assert answer["category"] == "INVALID_AUTHENTICATION"
    assert answer["message"].startswith("Authentication credentials not found.")
    assert answer["status"] == "error" and len(answer["correlationId"]) == 36


def test_every_response_carries_rate_limit_headers_with_the_defaults(hubspot: HubSpotApi) -> None:
    first = hubspot.get("/crm/v3/objects/deals")
    second = hubspot.get("/crm/v3/owners")
    assert all(name in first.headers for name in RATE_HEADERS)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "100"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert (
        int(second.headers["X-HubSpot-RateLimit-Remaining"])
        == int(first.headers["X-HubSpot-RateLimit-Remaining"]) - 1
    )
    assert first.headers["X-HubSpot-Correlation-Id"]


def test_ten_secondly_limit_answers_hubspots_429_without_retry_after(hubspot: HubSpotApi) -> None:
    # given a limit of 3 requests per 10 seconds
    hubspot.configure(ten_secondly_limit=3)
    # when a fourth request comes within the window
    statuses = [hubspot.get("/crm/v3/objects/deals").status_code for _ in range(3)]
    limited = hubspot.get("/crm/v3/objects/deals")
    # then HubSpot's RATE_LIMIT body, the headers at zero, and no invented Retry-After
    assert statuses == [200, 200, 200]
    body = checked("deals.json", limited, 429).json()
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in limited.headers
    # and moving the clock past the window lets requests through again
    hubspot.admin("POST", "clock", {"advance_seconds": 10.5})
    assert hubspot.get("/crm/v3/objects/deals").status_code == 200


def test_search_has_its_own_per_second_limit_and_no_rate_headers(hubspot: HubSpotApi) -> None:
    # given 2 searches per second allowed, and a 10-second limit of 2
    hubspot.configure(search_per_second_limit=2, ten_secondly_limit=2)
    search = {"filterGroups": [], "limit": 1}
    # when three searches come at once
    answers = [hubspot.post("/crm/v3/objects/deals/search", search) for _ in range(3)]
    # then the third hits SECONDLY; searches spent none of the 10-second budget
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["policyName"] == "SECONDLY"
    assert answers[2].json()["message"] == "You have reached your secondly limit."
    assert not any(name in answers[0].headers for name in RATE_HEADERS)
    assert [hubspot.get("/crm/v3/owners").status_code for _ in range(2)] == [200, 200]


def test_daily_limit(hubspot: HubSpotApi) -> None:
    hubspot.configure(daily_limit=2)
    statuses = [hubspot.get("/crm/v3/owners").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    last = hubspot.get("/crm/v3/owners")
    assert (
        last.json()["policyName"] == "DAILY"
        and last.json()["message"] == "You have reached your daily limit."
    )


def test_limits_can_be_turned_off_and_reset_restores_defaults(hubspot: HubSpotApi) -> None:
    hubspot.configure(ten_secondly_limit=1, rate_limits_enabled=False)
    assert [hubspot.get("/crm/v3/owners").status_code for _ in range(3)] == [200, 200, 200]
    hubspot.admin("POST", "reset")
    assert hubspot.admin("GET", "config")["ten_secondly_limit"] == 100
    with pytest.raises(AssertionError):
        hubspot.configure(ten_secondly_limt=5)  # a misspelled option is refused, not ignored


@pytest.mark.parametrize(
    ("kind", "status", "category"), [("500", 500, "INTERNAL_ERROR"), ("503", 503, "SERVICE_UNAVAILABLE")]
)
def test_injected_faults_answer_with_hubspots_error_shape(
    hubspot: HubSpotApi, kind: str, status: int, category: str
) -> None:
    hubspot.admin("POST", "faults", {"kind": kind, "path_prefix": "/crm/v3/objects/deals", "count": 1})
    failed = checked("deals.json", hubspot.get("/crm/v3/objects/deals"), status).json()
    assert failed["category"] == category and failed["status"] == "error"
    assert hubspot.get("/crm/v3/objects/deals").status_code == 200


def test_injected_429_is_the_ten_secondly_body(hubspot: HubSpotApi) -> None:
    hubspot.admin("POST", "faults", {"kind": "429", "count": 1})
    assert (
        checked("deals.json", hubspot.get("/crm/v3/objects/deals"), 429).json()["policyName"]
        == "TEN_SECONDLY_ROLLING"
    )
    log = hubspot.admin("GET", "requests")["requests"]
    assert [(e["path"], e["status"], e["fault"]) for e in log] == [("/crm/v3/objects/deals", 429, "429")]
