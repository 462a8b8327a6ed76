"""The raw-delivery archive: where each signed webhook delivery is kept, exactly as received, for replay.

Key: ``qbo/raw/<yyyy>/<mm>/<dd>/<hh>/<delivery-id>.json`` (UTC hour the delivery was received), so a
day or an hour can be listed and replayed by prefix. Document (JSON)::

    {"delivery_id": ..., "received_at": "2026-11-25T14:03:07.123Z",
     "headers": {"intuit-signature": ..., "content-type": ..., "user-agent": ..., "intuit-t-id": ...},
     "body": "<the body text>", "body_encoding": "utf-8"}

``body`` holds the exact bytes Intuit sent: as text when they are UTF-8 (JSON escaping round-trips
exactly), otherwise base64 with ``body_encoding: "base64"``. Only the headers a replay needs are kept
(the signature, to re-verify); authorization headers never are.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.ingest.ports import ArchiveError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_PREFIX: Final = "qbo/raw"
ARCHIVED_HEADERS: Final = ("intuit-signature", "content-type", "user-agent", "intuit-t-id")
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9=_.-]")


def raw_object_key(delivery_id: str, received_at: datetime) -> str:
    """``qbo/raw/yyyy/mm/dd/hh/<delivery-id>.json``; characters outside ``[A-Za-z0-9=_.-]`` become ``_``."""
    moment = received_at.astimezone(UTC)
    safe_id = _UNSAFE_KEY_CHARACTERS.sub("_", delivery_id)
    return f"{KEY_PREFIX}/{moment:%Y/%m/%d/%H}/{safe_id}.json"


@dataclass(frozen=True)
class WebhookDelivery:
    """One HTTP delivery from Intuit. Header names lower-case; ``body`` exactly the bytes sent.

    :meth:`archived` is the delivery as stored (only :data:`ARCHIVED_HEADERS`); :meth:`to_json` /
    :meth:`from_json` are exact inverses, so an archived delivery can be ingested again as it is.
    """

    delivery_id: str
    received_at: datetime
    headers: Mapping[str, str]
    body: bytes

    def archived(self) -> WebhookDelivery:
        kept = {name: self.headers[name] for name in ARCHIVED_HEADERS if name in self.headers}
        return replace(self, headers=kept)

    def to_json(self) -> bytes:
        try:
            body_text, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body_text, encoding = base64.b64encode(self.body).decode("ascii"), "base64"
        document = {
            "delivery_id": self.delivery_id,
            "received_at": self.received_at.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "headers": dict(self.headers),
            "body": body_text,
            "body_encoding": encoding,
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, document: bytes) -> WebhookDelivery:
        """For replay: the delivery back, body bytes identical to what was received."""
        parsed: dict[str, Any] = json.loads(document)
        text = parsed["body"]
        body = base64.b64decode(text) if parsed["body_encoding"] == "base64" else text.encode("utf-8")
        return cls(
            delivery_id=parsed["delivery_id"],
            received_at=datetime.fromisoformat(parsed["received_at"]),
            headers=parsed["headers"],
            body=body,
        )


class S3RawArchive:
    """:class:`~ledgerlink.ingest.ports.RawArchive` on an S3 bucket."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, document: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=document, ContentType="application/json"
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise ArchiveError(f"could not store the raw delivery in S3 ({code})") from error
        except BotoCoreError as error:
            raise ArchiveError(f"could not store the raw delivery in S3 ({type(error).__name__})") from error
