"""Property test of the QBO ingest Lambda on moto: no request body makes it answer 5xx.

Bodies are mutated recorded deliveries, random bytes and the bodies an adversarial run broke,
sent signed, unsigned, signed with another token or with a garbage signature, as text or base64,
sometimes past the size limit. Whatever the body: the status is 200, 400, 401 or 413; a signed
delivery answered 200 or 400 is in the bucket byte for byte (Intuit is never told "received" or
"malformed" about a delivery LedgerLink did not keep); nothing unsigned or oversize is stored.

Hypothesis settings as in tests/unit/qbo/test_webhooks_fuzz.py: deterministic, no example
database, no deadline, few enough examples to stay well under ten seconds on moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from ledgerlink.apigw import HttpRequest
from ledgerlink.config import EnvVar, reset_settings_cache
from ledgerlink.ingest.archive import WebhookDelivery, raw_object_key
from tests.integration.test_qbo_ingest_handler import LambdaContext
from tests.unit.ingest.signed_requests import INGEST_ENVIRONMENT, OTHER_TOKEN, VERIFIER_TOKEN, apigw_event
from tests.webhook_cases import ADVERSARIAL, fixture_bodies, mutate

BUCKET = INGEST_ENVIRONMENT["LEDGERLINK_RAW_BUCKET_NAME"]
MAX_BYTES = 64 * 1024  # small, so that an oversize body is cheap to make
SIGNED, UNSIGNED, OTHER_TOKEN_SIGNED, GARBAGE_SIGNED = "signed", "unsigned", "other token", "garbage"

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def lambda_on_moto(monkeypatch: pytest.MonkeyPatch, sleeps: Any) -> Iterator[Any]:
    from qbo_ingest import handler

    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(EnvVar.MAX_WEBHOOK_BYTES, str(MAX_BYTES))
    reset_settings_cache()
    handler.reset_for_tests()
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("events").create_event_bus(Name=INGEST_ENVIRONMENT["LEDGERLINK_EVENT_BUS_NAME"])
        boto3.client("secretsmanager").create_secret(
            Name=INGEST_ENVIRONMENT["LEDGERLINK_QBO_WEBHOOK_SECRET_NAME"], SecretString=VERIFIER_TOKEN
        )
        yield s3
    handler.reset_for_tests()
    reset_settings_cache()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from qbo_ingest import handler

    asked: list[float] = []
    monkeypatch.setattr(handler, "backoff_sleep", asked.append)
    return asked


def request(body: bytes, signing: str, *, base64_encoded: bool, request_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {"request_id": request_id}
    if signing == UNSIGNED:
        options["signature"] = None
    elif signing == OTHER_TOKEN_SIGNED:
        options["token"] = OTHER_TOKEN
    elif signing == GARBAGE_SIGNED:
        options["signature"] = "not-a-signature=="
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        base64_encoded = True  # API Gateway sends a body that is not UTF-8 text base64-encoded
    return apigw_event(body, base64_encoded=base64_encoded, **options)


bodies = st.one_of(
    st.builds(
        mutate,
        st.sampled_from(fixture_bodies(malformed=False)) | st.sampled_from(fixture_bodies()),
        st.randoms(use_true_random=False),
    ),
    st.sampled_from(fixture_bodies(malformed=False)),
    st.binary(max_size=200),
    # a valid delivery padded past the limit (JSON allows the whitespace)
    st.sampled_from(fixture_bodies(malformed=False)).map(lambda body: body + b" " * MAX_BYTES),
)


def test_no_request_body_makes_the_lambda_answer_5xx_and_every_signed_answer_is_archived(
    lambda_on_moto: Any,
) -> None:
    from qbo_ingest.handler import lambda_handler

    s3 = lambda_on_moto
    count = iter(range(1_000_000))
    adversarial = [case.body for case in ADVERSARIAL if len(case.body) <= MAX_BYTES]
    assert len(adversarial) >= 8

    @settings(FUZZ, max_examples=120)
    @given(
        body=bodies | st.sampled_from(adversarial),
        signing=st.sampled_from([SIGNED, SIGNED, SIGNED, UNSIGNED, OTHER_TOKEN_SIGNED, GARBAGE_SIGNED]),
        base64_encoded=st.booleans(),
    )
    @example(body=b"[" * 60_000 + b"]" * 4_000, signing=SIGNED, base64_encoded=False)
    @example(body=b"9" * 5000, signing=SIGNED, base64_encoded=True)
    @example(body=json.dumps([{}] * 20_000).encode(), signing=SIGNED, base64_encoded=False)
    def check(body: bytes, signing: str, base64_encoded: bool) -> None:
        request_id = f"fuzz-{next(count)}"
        event = request(body, signing, base64_encoded=base64_encoded, request_id=request_id)

        response = lambda_handler(event, LambdaContext())

        status = response["statusCode"]
        assert status in {200, 400, 401, 413}, (status, response["body"], body[:200])
        assert isinstance(json.loads(response["body"]), dict)  # always a JSON answer
        # the key the handler archives under: the request id and API Gateway's receipt time
        key = raw_object_key(request_id, HttpRequest.from_event(event).received_at)
        stored = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["KeyCount"]
        if len(body) > MAX_BYTES:
            assert (status, stored) == (413, 0)
        elif signing == SIGNED:
            assert status in (200, 400)
            archived = WebhookDelivery.from_json(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            assert archived.body == body
        else:
            assert (status, stored) == (401, 0)

    check()
