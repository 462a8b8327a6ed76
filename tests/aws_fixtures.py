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
    """Each ``(name, keys)`` table, with the global secondary indexes ``indexes[name]`` names (string
    keys, every attribute projected, as the stack creates them)."""
    for name, keys in tables:
        schema: list[Any] = [{"AttributeName": keys.partition_key, "KeyType": "HASH"}]
        key_names = [keys.partition_key]
        if keys.sort_key:
            schema.append({"AttributeName": keys.sort_key, "KeyType": "RANGE"})
            key_names.append(keys.sort_key)
        own_indexes = list((indexes or {}).get(name, ()))
        extra: dict[str, Any] = {}
        if own_indexes:
            extra["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in own_indexes
            ]
            key_names += [key for index in own_indexes for key in (index.partition_key, index.sort_key)]
        dynamodb.create_table(
            TableName=name,
            KeySchema=schema,
            AttributeDefinitions=[
                {"AttributeName": key, "AttributeType": "S"} for key in dict.fromkeys(key_names)
            ],
            BillingMode="PAY_PER_REQUEST",
            **extra,
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
