"""AWS resources the flows' test worlds create in moto: the tables (with their key schemas from
``ledgerlink.tables``) and a queue that captures the events of one detail-type from a bus."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ledgerlink.tables import IndexKeys, TableKeys


def create_tables(
    dynamodb: Any,
    tables: Iterable[tuple[str, TableKeys]],
    indexes: Mapping[str, Iterable[IndexKeys]] | None = None,
) -> None:
    """Each table with its keys, and the global secondary indexes ``indexes`` names for it."""
    for name, keys in tables:
        schema: list[Any] = [{"AttributeName": keys.partition_key, "KeyType": "HASH"}]
        attributes: list[Any] = [{"AttributeName": keys.partition_key, "AttributeType": "S"}]
        if keys.sort_key:
            schema.append({"AttributeName": keys.sort_key, "KeyType": "RANGE"})
            attributes.append({"AttributeName": keys.sort_key, "AttributeType": "S"})
        secondary = list((indexes or {}).get(name, ()))
        defined = {keys.partition_key, keys.sort_key}
        for index in secondary:
            for attribute in (index.partition_key, index.sort_key):
                if attribute not in defined:
                    defined.add(attribute)
                    attributes.append({"AttributeName": attribute, "AttributeType": "S"})
        options: dict[str, Any] = {}
        if secondary:
            options["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in secondary
            ]
        dynamodb.create_table(
            TableName=name,
            KeySchema=schema,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
            **options,
        )


def capture_queue(events: Any, sqs: Any, *, bus: str, detail_type: str, queue_name: str) -> str:
    """A queue that receives every ``detail_type`` event published on ``bus``; its URL."""
    queue_url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"capture-{detail_type.replace('.', '-')}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"detail-type": [detail_type]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": queue_arn}])
    return queue_url
