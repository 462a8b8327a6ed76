"""The raw-delivery archive: the key layout and a document that gives back the exact bytes received."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from ledgerlink.ingest.archive import S3RawArchive, WebhookDelivery, raw_object_key
from ledgerlink.ingest.ports import ArchiveError
from tests.unit.ingest.signed_requests import body_of, fixture_path


def test_the_key_is_partitioned_by_the_utc_hour_of_receipt() -> None:
    received = datetime(2026, 11, 25, 9, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert raw_object_key("Bq9kTgYcIAMEbXw=", received) == "qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"


def test_characters_that_do_not_belong_in_a_key_are_replaced() -> None:
    received = datetime(2026, 1, 2, 3, tzinfo=UTC)
    assert raw_object_key("../a b/c", received) == "qbo/raw/2026/01/02/03/.._a_b_c.json"


def test_a_utf8_body_is_stored_as_text_and_comes_back_byte_for_byte() -> None:
    body = body_of("legacy_multi_realm.json")
    archived = WebhookDelivery(
        "id-1",
        datetime(2026, 11, 25, 14, 2, 52, 123000, tzinfo=UTC),
        {"intuit-signature": "c2ln", "content-type": "application/json", "authorization": "Bearer x"},
        body,
    ).archived()
    document = json.loads(archived.to_json())
    assert document["body_encoding"] == "utf-8"
    assert document["body"] == body.decode()
    assert document["received_at"] == "2026-11-25T14:02:52.123Z"
    assert document["headers"] == {"intuit-signature": "c2ln", "content-type": "application/json"}
    assert WebhookDelivery.from_json(archived.to_json()) == archived


def test_a_body_that_is_not_utf8_is_stored_as_base64_and_comes_back_byte_for_byte() -> None:
    body = fixture_path("malformed/not_utf8.bin").read_bytes()
    archived = WebhookDelivery("id-2", datetime(2026, 11, 25, tzinfo=UTC), {}, body).archived()
    assert json.loads(archived.to_json())["body_encoding"] == "base64"
    assert WebhookDelivery.from_json(archived.to_json()).body == body


def test_non_ascii_text_survives_the_round_trip() -> None:
    body = '[{"note": "Café Müller, 東京", "escaped": "\\u00e9"}]'.encode()
    archived = WebhookDelivery("id-3", datetime(2026, 11, 25, tzinfo=UTC), {}, body).archived()
    assert WebhookDelivery.from_json(archived.to_json()).body == body


class FailingS3:
    def put_object(self, **_: object) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutObject")


def test_an_s3_failure_is_an_archive_error_naming_the_code() -> None:
    archive = S3RawArchive(FailingS3(), "bucket")  # type: ignore[arg-type]
    with pytest.raises(ArchiveError, match="AccessDenied"):
        archive.put("qbo/raw/x.json", b"{}")
