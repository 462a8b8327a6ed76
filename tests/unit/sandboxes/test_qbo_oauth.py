"""QBO sandbox: Intuit's OAuth 2.0 token endpoint and the API's 401/403 answers."""

from __future__ import annotations

import urllib.parse

import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_CLIENT_ID, DEMO_REDIRECT_URI, DEMO_REFRESH_TOKEN, REVOKE_PATH
from tests.unit.sandboxes.qbo_support import QboApi

AUTH_FAILED = "message=AuthenticationFailed; errorCode=003200; statusCode=401"


def _auth_fault(answer: requests.Response) -> dict[str, object]:
    body = answer.json()
    assert body["fault"]["type"] == "AUTHENTICATION"
    return body["fault"]["error"][0]  # type: ignore[no-any-return]


def test_refresh_grant_answers_intuit_token_fields(qbo_sandbox: SandboxServer) -> None:
    # given the demo app's credentials
    api = QboApi(qbo_sandbox)
    # when it refreshes with HTTP Basic client authentication
    answer = api.refresh()
    # then Intuit's token response comes back, not cacheable
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {
        "token_type",
        "expires_in",
        "refresh_token",
        "x_refresh_token_expires_in",
        "access_token",
    }
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] > 8_000_000
    assert answer.headers["Cache-Control"] == "no-store"
    # and the access token opens the company
    assert api.get("companyinfo/" + api.realm, token=body["access_token"]).status_code == 200


def test_refresh_tokens_rotate_and_the_old_one_is_invalid_grant(qbo_sandbox: SandboxServer) -> None:
    # given a first refresh
    api = QboApi(qbo_sandbox)
    first = api.refresh().json()
    # when the client refreshes again with the token it was just given
    second = api.refresh(first["refresh_token"]).json()
    # then each refresh rotated the refresh token
    assert len({api.credentials.refresh_token, first["refresh_token"], second["refresh_token"]}) == 3
    # and a rotated token is Intuit's invalid_grant, a client that did not persist the newest one is locked out
    for stale in (api.credentials.refresh_token, first["refresh_token"]):
        answer = api.refresh(stale)
        assert (answer.status_code, answer.json()) == (400, {"error": "invalid_grant"})
    assert api.refresh(second["refresh_token"]).status_code == 200


def test_daily_rotation_keeps_the_refresh_token_for_24_hours(qbo_sandbox: SandboxServer) -> None:
    # given Intuit's roughly-daily rotation selected
    api = QboApi(qbo_sandbox)
    api.configure(refresh_token_rotation="daily")
    first = api.refresh().json()
    # when refreshing twice within a day, then once more a day later
    same = api.refresh(first["refresh_token"]).json()
    api.advance_clock(24 * 3600 + 1)
    later = api.refresh(same["refresh_token"]).json()
    # then the refresh token changes only after 24 hours (the access tokens always do)
    assert same["refresh_token"] == first["refresh_token"] == api.credentials.refresh_token
    assert same["access_token"] != first["access_token"]
    assert later["refresh_token"] != first["refresh_token"]


def test_wrong_client_credentials_are_invalid_client(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    wrong_secret = api.refresh(auth=(api.credentials.client_id, "not-the-secret"))
    unknown_client = api.refresh(auth=("someone-else", api.credentials.client_secret))
    no_auth = requests.post(
        api.credentials.token_url, data={"grant_type": "refresh_token", "refresh_token": "x"}
    )
    for answer in (wrong_secret, unknown_client, no_auth):
        assert (answer.status_code, answer.json()) == (401, {"error": "invalid_client"})


def test_bad_grant_requests(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    auth = (api.credentials.client_id, api.credentials.client_secret)
    unknown = api.refresh("AB11-never-issued")
    unsupported = requests.post(api.credentials.token_url, auth=auth, data={"grant_type": "password"})
    missing = requests.post(api.credentials.token_url, auth=auth, data={"grant_type": "refresh_token"})
    assert (unknown.status_code, unknown.json()) == (400, {"error": "invalid_grant"})
    assert (unsupported.status_code, unsupported.json()) == (400, {"error": "unsupported_grant_type"})
    assert (missing.status_code, missing.json()) == (400, {"error": "invalid_request"})


def test_access_tokens_expire_on_the_sandbox_clock(qbo_sandbox: SandboxServer) -> None:
    # given a fresh access token
    api = QboApi(qbo_sandbox)
    token = api.access_token
    assert api.get("preferences", token=token).status_code == 200
    # when an hour passes
    api.advance_clock(3600)
    answer = api.get("preferences", token=token)
    # then the API answers 401 with Intuit's AuthenticationFault, and a refresh gets a working token
    assert answer.status_code == 401
    error = _auth_fault(answer)
    assert error["message"] == AUTH_FAILED and error["code"] == "3200"
    assert "expired" in str(error["detail"]).lower()
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    fresh = api.refresh().json()["access_token"]
    assert api.get("preferences", token=fresh).status_code == 200


def test_admin_can_expire_access_tokens(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    token = api.access_token
    assert api.admin("POST", "oauth/expire-access-tokens").status_code == 200
    assert api.get("preferences", token=token).status_code == 401


def test_revoked_connection_kills_every_token(qbo_sandbox: SandboxServer) -> None:
    # given a connected app
    api = QboApi(qbo_sandbox)
    tokens = api.refresh().json()
    # when the app revokes its refresh token at Intuit's revoke endpoint (JSON body, Basic auth)
    revoked = requests.post(
        qbo_sandbox.url + REVOKE_PATH,
        json={"token": tokens["refresh_token"]},
        auth=(api.credentials.client_id, api.credentials.client_secret),
    )
    # then the connection is gone: refresh is invalid_grant and the access token is refused
    assert revoked.status_code == 200
    assert api.refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    answer = api.get("preferences", token=tokens["access_token"])
    assert answer.status_code == 401
    assert _auth_fault(answer)["message"] == AUTH_FAILED


def test_admin_revoke_simulates_a_user_disconnecting(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    token = api.access_token
    # the company's two grants (the app's and the person's at the keyboard) both end
    assert api.admin("POST", "oauth/revoke", {"realm_id": api.realm}).json() == {"revoked_connections": 2}
    assert api.get("preferences", token=token).status_code == 401
    assert api.refresh(api.latest_refresh_token).json() == {"error": "invalid_grant"}
    assert api.refresh(DEMO_REFRESH_TOKEN).json() == {"error": "invalid_grant"}


def test_missing_or_unknown_bearer_is_401_with_intuits_body(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    missing = requests.get(api.url("invoice/1"), headers={"Accept": "application/json"})
    malformed = requests.get(api.url("invoice/1"), headers={"Authorization": "Bearer abc"})
    unknown = requests.get(api.url("invoice/1"), headers={"Authorization": "Bearer " + "x" * 64})
    for answer in (missing, malformed, unknown):
        assert answer.status_code == 401
        body = answer.json()
        assert set(body) >= {"fault", "time", "intuitObject", "queryResponse", "cdcresponse"}
        assert _auth_fault(answer)["code"] == "3200"
    assert _auth_fault(malformed)["detail"] == "Malformed bearer token: too short or too long"


def test_a_token_for_one_realm_is_403_on_another(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    answer = requests.get(api.url("invoice/1", realm="1234567890"), headers=api.headers())
    assert answer.status_code == 403
    error = answer.json()["fault"]["error"][0]
    assert error["message"] == "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"
    assert error["code"] == "3100"


def test_authorization_code_flow(qbo_sandbox: SandboxServer) -> None:
    # given the app sends the user to Intuit's authorize endpoint
    api = QboApi(qbo_sandbox)
    consent = requests.get(
        qbo_sandbox.url + "/connect/oauth2",
        params={
            "client_id": api.credentials.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": DEMO_REDIRECT_URI,
            "state": "csrf-123",
        },
        allow_redirects=False,
    )
    # then the sandbox consents at once and redirects back with a code, the state and the realm
    assert consent.status_code == 302
    location = urllib.parse.urlsplit(consent.headers["Location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    assert location.geturl().startswith(DEMO_REDIRECT_URI)
    assert query["state"] == "csrf-123" and query["realmId"] == api.realm
    # when the code is exchanged (once)
    auth = (api.credentials.client_id, api.credentials.client_secret)
    exchange = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": DEMO_REDIRECT_URI}
    tokens = requests.post(api.credentials.token_url, auth=auth, data=exchange)
    again = requests.post(api.credentials.token_url, auth=auth, data=exchange)
    # then tokens come back, and a reused code is invalid_grant
    assert tokens.status_code == 200
    assert api.get("preferences", token=tokens.json()["access_token"]).status_code == 200
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_discovery_document_points_at_the_sandbox(qbo_sandbox: SandboxServer) -> None:
    document = requests.get(qbo_sandbox.url + "/.well-known/openid_sandbox_configuration").json()
    assert document["token_endpoint"] == qbo_sandbox.url + "/oauth2/v1/tokens/bearer"
    assert document["revocation_endpoint"] == qbo_sandbox.url + REVOKE_PATH


def test_an_authorize_request_without_a_scope_is_refused(qbo_sandbox: SandboxServer) -> None:
    reply = requests.get(
        qbo_sandbox.url + "/connect/oauth2",
        params={"client_id": DEMO_CLIENT_ID, "response_type": "code", "redirect_uri": DEMO_REDIRECT_URI},
        allow_redirects=False,
        timeout=10,
    )
    assert (reply.status_code, reply.json()["error"]) == (400, "invalid_scope")


def test_a_user_who_cancels_is_redirected_with_access_denied_and_the_state(
    qbo_sandbox: SandboxServer,
) -> None:
    requests.post(qbo_sandbox.url + "/_admin/config", json={"authorize_decision": "deny"}, timeout=10)
    reply = requests.get(
        qbo_sandbox.url + "/connect/oauth2",
        params={
            "client_id": DEMO_CLIENT_ID,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": DEMO_REDIRECT_URI,
            "state": "s-9",
        },
        allow_redirects=False,
        timeout=10,
    )
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(reply.headers["Location"]).query))
    assert reply.status_code == 302 and query == {"error": "access_denied", "state": "s-9"}
