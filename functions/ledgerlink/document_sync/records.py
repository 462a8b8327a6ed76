"""What LedgerLink made of one deal in QBO: the deal's documents row, beside its audit rows in the links table.

pk ``deal#<connection>#<deal id>``, sk ``documents``, with per document kind (``estimate_``, ``invoice_``):
``id`` and ``number`` (QBO's Id and DocNumber), ``generation`` (how many times a document of this kind was
started for the deal: a deleted estimate is made again under the next generation, hence a new
``requestid``), ``attempt`` and ``pending_number`` (the DocNumber being tried and its attempt, saved before
the write, so a retried create reuses its ``requestid`` and number and never makes a second document),
and for the estimate ``fingerprint`` (what the deal asked for last time) — plus ``customer_id`` and
``revision``, an optimistic lock: :meth:`DealDocumentStore.save` writes only over the revision it read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from ledgerlink.crosswalk import PK, SK, links_table_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DOCUMENTS_SK: Final = "documents"


class LostRace(Exception):
    """Another worker saved the deal's documents first: start again from what it saved."""


@dataclass(frozen=True)
class DealDocuments:
    connection: str
    deal_id: str
    estimate_id: str | None = None
    estimate_number: str | None = None
    estimate_generation: int = 0
    estimate_attempt: int = 0
    estimate_pending_number: str | None = None
    estimate_fingerprint: str | None = None
    invoice_id: str | None = None
    invoice_number: str | None = None
    invoice_generation: int = 0
    invoice_attempt: int = 0
    invoice_pending_number: str | None = None
    customer_id: str | None = None
    revision: int = 0

    @property
    def pk(self) -> str:
        return deal_pk(self.connection, self.deal_id)

    def but(self, **changes: Any) -> DealDocuments:
        return replace(self, **changes)

    def own_keys(self, realm_id: str) -> frozenset[str]:
        """The ``<realm>:<Id>`` keys of the documents LedgerLink made from this deal."""
        return frozenset(f"{realm_id}:{doc_id}" for doc_id in (self.estimate_id, self.invoice_id) if doc_id)


def deal_pk(connection: str, deal_id: str) -> str:
    return f"deal#{connection}#{deal_id}"


_INTEGERS: Final = frozenset(
    {"estimate_generation", "estimate_attempt", "invoice_generation", "invoice_attempt", "revision"}
)
_TEXT: Final = tuple(
    f.name
    for f in fields(DealDocuments)
    if f.name not in _INTEGERS and f.name not in ("connection", "deal_id")
)


class DealDocumentStore:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table = table_name
        self.client = client

    def get(self, connection: str, deal_id: str) -> DealDocuments:
        """The deal's row, or an empty one (revision 0) when LedgerLink made nothing of it yet."""
        try:
            item = self.client.get_item(
                TableName=self.table,
                Key={PK: {"S": deal_pk(connection, deal_id)}, SK: {"S": DOCUMENTS_SK}},
                ConsistentRead=True,
            ).get("Item")
        except ClientError as error:
            raise links_table_error(self.table, "GetItem", error) from error
        if not item:
            return DealDocuments(connection=connection, deal_id=deal_id)
        values: dict[str, Any] = {"connection": connection, "deal_id": deal_id}
        for name in _INTEGERS:
            if name in item:
                values[name] = int(item[name]["N"])
        for name in _TEXT:
            if name in item:
                values[name] = item[name]["S"]
        return DealDocuments(**values)

    def save(self, documents: DealDocuments) -> DealDocuments:
        """Store ``documents`` as the next revision if the stored one is still ``documents.revision``;
        :class:`LostRace` otherwise."""
        stored = documents.but(revision=documents.revision + 1)
        item: dict[str, Any] = {
            PK: {"S": stored.pk},
            SK: {"S": DOCUMENTS_SK},
            "connection": {"S": stored.connection},
            "deal_id": {"S": stored.deal_id},
            "updated_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        for name in _INTEGERS:
            item[name] = {"N": str(getattr(stored, name))}
        for name in _TEXT:
            value = getattr(stored, name)
            if value is not None:
                item[name] = {"S": str(value)}
        if documents.revision == 0:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": PK},
            }
        else:
            condition = {
                "ConditionExpression": "#revision = :revision",
                "ExpressionAttributeNames": {"#revision": "revision"},
                "ExpressionAttributeValues": {":revision": {"N": str(documents.revision)}},
            }
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise LostRace(f"deal {documents.deal_id}'s documents changed under this worker") from None
            raise links_table_error(self.table, "PutItem", error) from error
        return stored
