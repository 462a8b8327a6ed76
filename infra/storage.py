"""Storage: the raw-deliveries bucket (with its access-log bucket) and the DynamoDB tables with their indexes."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.topology import TableSpec, Topology


class Storage(Construct):
    """``raw_bucket`` keeps every webhook delivery as received; ``tables`` maps topology keys to tables."""

    def __init__(
        self, scope: Construct, construct_id: str, *, topology: Topology, removal: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        spec = topology.bucket
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=spec.access_log_bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(spec.access_logs_expire_after_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
        )
        self.raw_bucket = s3.Bucket(
            self,
            "RawDeliveries",
            bucket_name=spec.name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            # A delivery is written once; versions protect it from an accidental overwrite or delete.
            versioned=True,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="raw-deliveries/",
            lifecycle_rules=[
                # Webhook bodies are a few KB: below S3's 128 KB floor for storage-class transitions,
                # so they stay in Standard and simply expire after the stage's replay window.
                s3.LifecycleRule(
                    id="expire-raw-deliveries",
                    expiration=Duration.days(spec.expire_after_days),
                    noncurrent_version_expiration=Duration.days(spec.noncurrent_versions_expire_after_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
        )
        self.tables: dict[str, dynamodb.Table] = {
            table.key: self._table(table, removal) for table in topology.tables
        }
        # What functions are granted table access through: the same tables, referenced without their
        # indexes. CDK grants a table's data actions on ``<table>/index/*`` as well once it has an index;
        # an index is granted on its own, by name, to the functions that query it (infra/compute.py).
        self.grant_tables: dict[str, dynamodb.ITable] = {
            key: dynamodb.Table.from_table_arn(self, f"{_construct_id(key)}Grants", table.table_arn)
            for key, table in self.tables.items()
        }

    def _table(self, spec: TableSpec, removal: RemovalPolicy) -> dynamodb.Table:
        keys = spec.keys
        table = dynamodb.Table(
            self,
            _construct_id(spec.key),
            table_name=spec.name,
            partition_key=dynamodb.Attribute(name=keys.partition_key, type=dynamodb.AttributeType.STRING),
            sort_key=(
                dynamodb.Attribute(name=keys.sort_key, type=dynamodb.AttributeType.STRING)
                if keys.sort_key
                else None
            ),
            time_to_live_attribute=keys.ttl_attribute,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=removal == RemovalPolicy.RETAIN,
            removal_policy=removal,
        )
        for index in spec.indexes:
            # On demand like the table (no capacity of its own); every attribute projected, so a query
            # on the index needs no second read of the table.
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(
                    name=index.partition_key, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(name=index.sort_key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table


def _construct_id(key: str) -> str:
    """``vendor-state`` -> ``VendorStateTable``: stable logical ids derived from topology keys."""
    return "".join(part.capitalize() for part in key.replace("_", "-").split("-")) + "Table"
