"""The HTTP API: versioned webhook routes to Lambdas (payload format 2.0), stage throttling, access logs."""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.compute import Functions, log_retention
from infra.nag import acknowledge
from infra.topology import Topology

# One JSON object per request (HTTP API $context variables); no headers or bodies, so no secrets.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "error": "$context.error.message",
}


class WebhookApi(Construct):
    """``http_api`` and its ``stage``; ``webhook_urls`` maps each route key to its public URL."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        functions: Functions,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        spec = topology.api
        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=spec.access_log_group_name,
            retention=log_retention(topology.environment.log_retention_days),
            removal_policy=removal,
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=spec.name,
            description=f"LedgerLink {topology.stage} webhooks",
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name=spec.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=spec.throttle.rate_limit, burst_limit=spec.throttle.burst_limit
            ),
            access_log_settings=_AccessLogSettings(self.access_log_group),
        )
        self.webhook_urls: dict[str, str] = {}
        for route in spec.routes:
            integration = integrations.HttpLambdaIntegration(
                f"{route.function}-integration",
                functions.functions[route.function],
                payload_format_version=apigwv2.PayloadFormatVersion.custom(spec.payload_format_version),
            )
            for created in self.http_api.add_routes(
                path=route.path, methods=[apigwv2.HttpMethod(route.method)], integration=integration
            ):
                acknowledge(
                    created,
                    "AwsSolutions-APIG4",
                    "Webhook senders (Intuit, HubSpot) cannot present AWS or JWT credentials; every request "
                    "is authenticated by its HMAC-SHA256 signature header, verified in the Lambda before use.",
                )
            self.webhook_urls[route.route_key] = f"{self.stage.url.rstrip('/')}{route.path}"


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """JSON access logs (:data:`ACCESS_LOG_FIELDS`) into ``log_group``."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._log_group = log_group

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return apigwv2.LogGroupLogDestination(self._log_group)

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":")))
