"""The raw-delivery archive: where each signed webhook delivery is kept, exactly as received, for replay.

Key: ``<vendor>/raw/<yyyy>/<mm>/<dd>/<hh>/<delivery-id>.json`` (UTC hour the delivery was received),
``qbo/raw/...`` for Intuit's deliveries and ``hubspot/raw/...`` for HubSpot's, so a day or an hour of
one vendor can be listed and replayed by prefix. Document (JSON)::

    {"delivery_id": ..., "received_at": "2026-11-25T14:03:07.123Z",
     "headers": {"intuit-signature": ..., "content-type": ..., "user-agent": ..., "intuit-t-id": ...},
     "body": "<the body text>", "body_encoding": "utf-8"}

``body`` holds the exact bytes the sender sent: as text when they are UTF-8 (JSON escaping round-trips
exactly), otherwise base64 with ``body_encoding: "base64"``. Only the headers a replay needs are kept
(the signature and what it covers, to re-verify: :data:`ARCHIVED_HEADERS` for QBO,
:data:`HUBSPOT_ARCHIVED_HEADERS` for HubSpot); authorization headers never are. A delivery whose
signature was checked against a URL (HubSpot's v3) also records ``"verified": "v3"`` and the
``"public_url"`` it was checked against: a replay cannot check HubSpot's signature again once its
timestamp is more than five minutes old, and needs the URL to check it at all. ``ledgerlink replay archive``
(docs/replay.md) ingests a window of these documents again.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.ingest.ports import ArchiveError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_PREFIX: Final = "qbo/raw"
HUBSPOT_KEY_PREFIX: Final = "hubspot/raw"
ARCHIVED_HEADERS: Final = ("intuit-signature", "content-type", "user-agent", "intuit-t-id")
HUBSPOT_ARCHIVED_HEADERS: Final = (
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "content-type",
    "user-agent",
)
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9=_.-]")


def raw_object_key(delivery_id: str, received_at: datetime, prefix: str = KEY_PREFIX) -> str:
    """``<prefix>/yyyy/mm/dd/hh/<delivery-id>.json`` (``qbo/raw`` by default); characters outside
    ``[A-Za-z0-9=_.-]`` become ``_``."""
    moment = received_at.astimezone(UTC)
    safe_id = _UNSAFE_KEY_CHARACTERS.sub("_", delivery_id)
    return f"{prefix}/{moment:%Y/%m/%d/%H}/{safe_id}.json"


@dataclass(frozen=True)
class WebhookDelivery:
    """One HTTP delivery from a webhook sender. Header names lower-case; ``body`` exactly the bytes sent.

    :meth:`archived` is the delivery as stored (only the headers named, :data:`ARCHIVED_HEADERS` by
    default); :meth:`to_json` / :meth:`from_json` are exact inverses, so an archived delivery can be
    ingested again as it is. ``verified`` and ``public_url`` say how its signature was checked at
    receipt, when that depended on more than the body (HubSpot's v3: the URL); None otherwise, and
    then absent from the document.
    """

    delivery_id: str
    received_at: datetime
    headers: Mapping[str, str]
    body: bytes
    verified: str | None = None
    public_url: str | None = None

    def archived(self, headers: Sequence[str] = ARCHIVED_HEADERS) -> WebhookDelivery:
        kept = {name: self.headers[name] for name in headers if name in self.headers}
        return replace(self, headers=kept)

    def to_json(self) -> bytes:
        try:
            body_text, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body_text, encoding = base64.b64encode(self.body).decode("ascii"), "base64"
        document: dict[str, Any] = {
            "delivery_id": self.delivery_id,
            "received_at": self.received_at.astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "headers": dict(self.headers),
            "body": body_text,
            "body_encoding": encoding,
        }
        if self.verified is not None:
            document["verified"] = self.verified
        if self.public_url is not None:
            document["public_url"] = self.public_url
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
            verified=parsed.get("verified"),
            public_url=parsed.get("public_url"),
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
