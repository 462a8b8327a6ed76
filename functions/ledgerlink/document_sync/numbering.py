"""DocNumbers for the documents LedgerLink creates when the company numbers its own (``CustomTxnNumbers`` on).

Off (QBO's default), LedgerLink sends no DocNumber and QBO gives the next one, as Intuit advises. On, QBO
takes the number it is sent and refuses one in use (Fault 6140); LedgerLink then draws the next number
of the connection's sequence (an atomic counter per connection and kind in the vendor-state table, from
``qbo_documents.numbering.first``) and tries again, ``numbering.attempts`` times at most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from ledgerlink.configfile import DocumentNumbering

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DOC_NUMBER_MAX: Final = 21  # QBO's DocNumber limit


class DocNumberStoreError(RuntimeError):
    retryable = True
    reason = "doc_number_counter_unavailable"


class DocNumbers:
    def __init__(
        self, table_name: str, client: DynamoDBClient, *, connection: str, numbering: DocumentNumbering
    ):
        self.table = table_name
        self.client = client
        self.connection = connection
        self.numbering = numbering

    def next(self, kind: str) -> str:
        """The next number of ``kind`` ("estimate" or "invoice"): prefix + counter, never reused."""
        prefix = self.numbering.estimate_prefix if kind == "estimate" else self.numbering.invoice_prefix
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"docnumber#{self.connection}#{kind}"}, "sk": {"S": "counter"}},
                UpdateExpression="ADD #n :one",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "ClientError")
            raise DocNumberStoreError(f"the DocNumber counter could not be read ({code})") from error
        drawn = int(answer["Attributes"]["n"]["N"])
        number = f"{prefix}{self.numbering.first + drawn - 1}"
        return number[:DOC_NUMBER_MAX]
