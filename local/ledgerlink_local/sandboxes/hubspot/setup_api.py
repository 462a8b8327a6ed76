"""Portal set-up endpoints: properties and property groups, pipelines and stages, owners,
and the portal's currencies.

Properties: creating a name that exists answers 409 (HubSpot's v1 docs: "Returns a 409
Conflict error if there is already a property with the 'name' you used"); HubSpot-defined
properties cannot be edited or archived; ``hasUniqueValue`` is accepted on string and number
properties and cannot be changed afterwards, and only on the object types HubSpot documents unique
values for: contacts, companies, deals, tickets and custom objects. Line items and products refuse it
(400 ``VALIDATION_ERROR``; the wording is not HubSpot's, which is undocumented) unless the admin switch
``unique_values_on_line_items`` is on. Deleting a property archives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledgerlink_local.sandboxes.core import Request, Response
from ledgerlink_local.sandboxes.hubspot.errors import (
    HubSpotError,
    not_found,
    standard_error,
    standard_error_from,
    validation_error,
)
from ledgerlink_local.sandboxes.hubspot.model import (
    FIELD_TYPES,
    FIELD_TYPES_BY_TYPE,
    PROPERTY_NAME,
    PROPERTY_TYPES,
    SUPPORTED_CURRENCIES,
    ObjectType,
    Pipeline,
    PipelineStage,
    PropertyCatalog,
    PropertyDefinition,
    PropertyGroup,
    PropertyOption,
    instant,
    object_type,
)
from ledgerlink_local.sandboxes.hubspot.routing import (
    RouteGroup,
    batch_inputs,
    batch_response,
    bool_arg,
    int_arg,
    json_object,
    no_content,
)

# Object types HubSpot lists no unique-value properties for (its docs name contacts, companies, deals,
# tickets and custom objects).
NO_UNIQUE_VALUES = frozenset({"line_items", "products"})


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise validation_error(f"{name} is required", context={"field": [name]})
        return None
    if not isinstance(value, str):
        raise validation_error(f"{name} must be a string", context={"field": [name]})
    return value


def _int(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise validation_error(f"{name} must be an integer", context={"field": [name]})
    return value


def _options(raw: Any) -> list[PropertyOption]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise validation_error("options must be a list")
    options, seen = [], set()
    for order, item in enumerate(raw):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("label"), str)
            or item.get("value") is None
        ):
            raise validation_error("each option needs a label and a value")
        value = str(item["value"])
        if value in seen:
            raise validation_error(f"Duplicate option value {value}", context={"value": [value]})
        seen.add(value)
        options.append(
            PropertyOption(
                item["label"],
                value,
                int(item.get("displayOrder", order)),
                bool(item.get("hidden", False)),
                str(item.get("description", "")),
            )
        )
    return options


class PortalSetupApi(RouteGroup):
    def register(self) -> None:
        add = self.sandbox.add_route
        props = "/crm/v3/properties/{objectType}"
        add("POST", props + "/batch/create", self.batch_create_properties)
        add("POST", props + "/batch/read", self.batch_read_properties)
        add("POST", props + "/batch/archive", self.batch_archive_properties)
        add("GET", props + "/groups", self.list_groups)
        add("POST", props + "/groups", self.create_group)
        add("GET", props + "/groups/{groupName}", self.read_group)
        add("PATCH", props + "/groups/{groupName}", self.update_group)
        add("DELETE", props + "/groups/{groupName}", self.archive_group)
        add("GET", props, self.list_properties)
        add("POST", props, self.create_property)
        add("GET", props + "/{propertyName}", self.read_property)
        add("PATCH", props + "/{propertyName}", self.update_property)
        add("DELETE", props + "/{propertyName}", self.archive_property)
        pipes = "/crm/v3/pipelines/{objectType}"
        add("GET", pipes, self.list_pipelines)
        add("POST", pipes, self.create_pipeline)
        add("GET", pipes + "/{pipelineId}", self.read_pipeline)
        add("PATCH", pipes + "/{pipelineId}", self.update_pipeline)
        add("DELETE", pipes + "/{pipelineId}", self.archive_pipeline)
        add("GET", pipes + "/{pipelineId}/stages", self.list_stages)
        add("POST", pipes + "/{pipelineId}/stages", self.create_stage)
        add("GET", pipes + "/{pipelineId}/stages/{stageId}", self.read_stage)
        add("PATCH", pipes + "/{pipelineId}/stages/{stageId}", self.update_stage)
        add("DELETE", pipes + "/{pipelineId}/stages/{stageId}", self.archive_stage)
        add("GET", "/crm/v3/owners", self.list_owners)
        add("GET", "/crm/v3/owners/{ownerId}", self.read_owner)
        add("GET", "/settings/v3/currencies/company-currency", self.company_currency)
        add("GET", "/settings/v3/currencies/exchange-rates/current", self.current_exchange_rates)
        add("GET", "/settings/v3/currencies/codes", self.currency_codes)

    def _catalog(self, request: Request) -> tuple[ObjectType, PropertyCatalog]:
        kind = object_type(request.path_params["objectType"])
        return kind, self.portal.catalog(kind)

    def _describe(self, catalog: PropertyCatalog, definition: PropertyDefinition) -> dict[str, Any]:
        return definition.describe(catalog.options(definition))

    # ---- properties

    def _refuse_unique_where_unsupported(self, kind: ObjectType, body: Mapping[str, Any]) -> None:
        if body.get("hasUniqueValue") is not True or kind.name not in NO_UNIQUE_VALUES:
            return
        if self.portal.unique_values_on_line_items:
            return
        raise validation_error(
            f"Unique values are not supported for properties of object type {kind.name}: "
            "hasUniqueValue is available on contacts, companies, deals, tickets and custom objects.",
            context={"hasUniqueValue": ["true"], "objectType": [kind.name]},
        )

    def list_properties(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        archived = bool_arg(request, "archived")
        found = [d for d in catalog.definitions.values() if d.archived == archived]
        found.sort(key=lambda d: (d.group_name, d.display_order, d.name))
        return Response(200, {"results": [self._describe(catalog, d) for d in found]})

    def _property(self, catalog: PropertyCatalog, name: str, *, archived: bool = False) -> PropertyDefinition:
        definition = catalog.definitions.get(name)
        if definition is None or definition.archived != archived:
            raise not_found(
                f"Unable to find property {name} for object type {catalog.object_type.name}",
                context={"propertyName": [name]},
            )
        return definition

    def read_property(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        definition = self._property(
            catalog, request.path_params["propertyName"], archived=bool_arg(request, "archived")
        )
        return Response(200, self._describe(catalog, definition))

    def _new_property(self, catalog: PropertyCatalog, body: Mapping[str, Any]) -> PropertyDefinition:
        self._refuse_unique_where_unsupported(catalog.object_type, body)
        name = _text(body, "name") or ""
        label = _text(body, "label") or ""
        kind = _text(body, "type") or ""
        field_type = _text(body, "fieldType") or ""
        group = _text(body, "groupName") or ""
        if not PROPERTY_NAME.fullmatch(name):
            raise validation_error(
                f"Property name {name!r} is invalid: use lower-case letters, digits and underscores, "
                "starting with a letter.",
                context={"name": [name]},
            )
        if name.startswith("hs_"):
            raise validation_error(
                f"Property names starting with hs_ are reserved: {name}", context={"name": [name]}
            )
        existing = catalog.definitions.get(name)
        if existing is not None and not existing.archived:
            raise HubSpotError(
                409,
                f"Property named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        if kind not in PROPERTY_TYPES:
            raise validation_error(
                f"type must be one of {', '.join(PROPERTY_TYPES)}", context={"type": [kind]}
            )
        if field_type not in FIELD_TYPES or field_type not in FIELD_TYPES_BY_TYPE[kind]:
            raise validation_error(
                f"fieldType {field_type} is not valid for a property of type {kind}; "
                f"use one of {', '.join(FIELD_TYPES_BY_TYPE[kind])}",
                context={"fieldType": [field_type]},
            )
        if group not in catalog.groups or catalog.groups[group].archived:
            raise validation_error(f"Property group {group} does not exist", context={"groupName": [group]})
        options = _options(body.get("options"))
        if kind == "enumeration" and not options:
            raise validation_error("Enumeration properties need at least one option", context={"options": []})
        unique = bool(body.get("hasUniqueValue", False))
        if unique and kind not in ("string", "number"):
            raise validation_error(
                "hasUniqueValue is only supported on string and number properties", context={"type": [kind]}
            )
        now = self.sandbox.clock.now()
        return PropertyDefinition(
            name=name,
            label=label,
            type=kind,
            field_type=field_type,
            group_name=group,
            description=_text(body, "description", required=False) or "",
            options=options,
            has_unique_value=unique,
            hubspot_defined=False,
            display_order=_int(body, "displayOrder", -1),
            form_field=bool(body.get("formField", False)),
            hidden=bool(body.get("hidden", False)),
            number_display_hint=_text(body, "numberDisplayHint", required=False),
            created_at=now,
            updated_at=now,
        )

    def create_property(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        definition = self._new_property(catalog, json_object(request))
        catalog.definitions[definition.name] = definition
        return Response(201, self._describe(catalog, definition))

    def update_property(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        definition = self._property(catalog, request.path_params["propertyName"])
        if definition.hubspot_defined:
            raise validation_error(
                f"{definition.name} is a HubSpot-defined property; its definition is read-only.",
                context={"propertyName": [definition.name]},
            )
        body = json_object(request)
        self._refuse_unique_where_unsupported(catalog.object_type, body)
        if "hasUniqueValue" in body:
            raise validation_error("hasUniqueValue cannot be changed once a property exists")
        if "label" in body:
            definition.label = _text(body, "label") or definition.label
        if "description" in body:
            definition.description = _text(body, "description") or ""
        if "groupName" in body:
            group = _text(body, "groupName") or ""
            if group not in catalog.groups:
                raise validation_error(
                    f"Property group {group} does not exist", context={"groupName": [group]}
                )
            definition.group_name = group
        if "type" in body or "fieldType" in body:
            kind = _text(body, "type", required=False) or definition.type
            field_type = _text(body, "fieldType", required=False) or definition.field_type
            if kind not in PROPERTY_TYPES or field_type not in FIELD_TYPES_BY_TYPE[kind]:
                raise validation_error(f"fieldType {field_type} is not valid for a property of type {kind}")
            definition.type, definition.field_type = kind, field_type
        if "options" in body:
            definition.options = _options(body["options"])
        if "displayOrder" in body:
            definition.display_order = _int(body, "displayOrder", definition.display_order)
        for flag, attribute in (("hidden", "hidden"), ("formField", "form_field")):
            if flag in body:
                setattr(definition, attribute, bool(body[flag]))
        definition.updated_at = self.sandbox.clock.now()
        return Response(200, self._describe(catalog, definition))

    def _archive_property(self, catalog: PropertyCatalog, name: str) -> None:
        definition = self._property(catalog, name)
        if definition.hubspot_defined:
            raise validation_error(
                f"{name} is a HubSpot-defined property and cannot be archived.",
                context={"propertyName": [name]},
            )
        now = self.sandbox.clock.now()
        definition.archived, definition.archived_at, definition.updated_at = True, now, now

    def archive_property(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        self._archive_property(catalog, request.path_params["propertyName"])
        return no_content()

    def batch_create_properties(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        started = self.sandbox.clock.now()
        results, errors = [], []
        for item in batch_inputs(json_object(request)):
            try:
                if not isinstance(item, Mapping):
                    raise validation_error("each input must be a property definition")
                definition = self._new_property(catalog, item)
            except HubSpotError as error:
                entry = standard_error_from(error, self.portal.portal_id)
                if isinstance(item, Mapping) and item.get("name"):
                    entry["context"].setdefault("name", [str(item["name"])])
                errors.append(entry)
                continue
            catalog.definitions[definition.name] = definition
            results.append(self._describe(catalog, definition))
        return batch_response(started, self.sandbox.clock.now(), results, errors, success_status=201)

    def batch_read_properties(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        started = self.sandbox.clock.now()
        body = json_object(request)
        archived = bool(body.get("archived", False))
        results, missing = [], []
        for item in batch_inputs(body):
            name = str(item.get("name")) if isinstance(item, Mapping) else ""
            definition = catalog.definitions.get(name)
            if definition is None or definition.archived != archived:
                missing.append(name)
            else:
                results.append(self._describe(catalog, definition))
        errors = []
        if missing:
            errors.append(
                standard_error(
                    404, "OBJECT_NOT_FOUND", "Some properties could not be found.", context={"names": missing}
                )
            )
        return batch_response(started, self.sandbox.clock.now(), results, errors)

    def batch_archive_properties(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        for item in batch_inputs(json_object(request)):
            name = str(item.get("name")) if isinstance(item, Mapping) else ""
            definition = catalog.definitions.get(name)
            if definition is not None and not definition.archived:
                self._archive_property(catalog, name)
        return no_content()

    # ---- property groups

    def list_groups(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        groups = sorted(
            (g for g in catalog.groups.values() if not g.archived), key=lambda g: (g.display_order, g.name)
        )
        return Response(200, {"results": [g.describe() for g in groups]})

    def _group(self, catalog: PropertyCatalog, name: str) -> PropertyGroup:
        group = catalog.groups.get(name)
        if group is None or group.archived:
            raise not_found(f"Unable to find property group {name}", context={"groupName": [name]})
        return group

    def create_group(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        body = json_object(request)
        name = _text(body, "name") or ""
        label = _text(body, "label") or ""
        if not PROPERTY_NAME.fullmatch(name):
            raise validation_error(f"Property group name {name!r} is invalid", context={"name": [name]})
        if name in catalog.groups and not catalog.groups[name].archived:
            raise HubSpotError(
                409,
                f"Property group named '{name}' already exists.",
                "OBJECT_ALREADY_EXISTS",
                context={"name": [name]},
            )
        group = PropertyGroup(name, label, _int(body, "displayOrder", -1))
        catalog.groups[name] = group
        return Response(201, group.describe())

    def read_group(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        return Response(200, self._group(catalog, request.path_params["groupName"]).describe())

    def update_group(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        group = self._group(catalog, request.path_params["groupName"])
        body = json_object(request)
        if "label" in body:
            group.label = _text(body, "label") or group.label
        if "displayOrder" in body:
            group.display_order = _int(body, "displayOrder", group.display_order)
        return Response(200, group.describe())

    def archive_group(self, request: Request) -> Response:
        _, catalog = self._catalog(request)
        group = self._group(catalog, request.path_params["groupName"])
        if any(d.group_name == group.name and not d.archived for d in catalog.definitions.values()):
            raise validation_error(
                f"Property group {group.name} still has properties; move or archive them first.",
                context={"groupName": [group.name]},
            )
        group.archived = True
        return no_content()

    # ---- pipelines

    def _pipelines(self, request: Request) -> dict[str, Pipeline]:
        kind = object_type(request.path_params["objectType"])
        if kind.name != "deals":
            raise validation_error(
                f"Pipelines are not supported for object type {kind.name}",
                context={"objectType": [kind.name]},
            )
        return self.portal.pipelines["deals"]

    def _pipeline(self, request: Request) -> Pipeline:
        pipelines = self._pipelines(request)
        pipeline_id = request.path_params["pipelineId"]
        pipeline = pipelines.get(pipeline_id)
        if pipeline is None or pipeline.archived:
            raise not_found(f"Unable to find pipeline {pipeline_id}", context={"pipelineId": [pipeline_id]})
        return pipeline

    def _next_id(self) -> str:
        self.portal.next_pipeline_id += 1
        return str(self.portal.next_pipeline_id)

    def _new_stage(self, body: Any, pipeline: Pipeline | None, now: datetime) -> PipelineStage:
        if not isinstance(body, Mapping):
            raise validation_error("each stage must be an object")
        label = _text(body, "label") or ""
        metadata = body.get("metadata")
        if not isinstance(metadata, Mapping) or "probability" not in metadata:
            raise validation_error(
                "Deal pipeline stages need metadata.probability between 0.0 and 1.0",
                context={"label": [label]},
            )
        probability = str(metadata["probability"])
        try:
            valid = 0.0 <= float(probability) <= 1.0
        except ValueError:
            valid = False
        if not valid:
            raise validation_error(f"probability must be between 0.0 and 1.0, got {probability}")
        if pipeline is not None and any(s.label == label and not s.archived for s in pipeline.stages):
            raise validation_error(f"A stage labelled {label} already exists in this pipeline")
        closed = str(
            metadata.get("isClosed", "true" if float(probability) in (0.0, 1.0) else "false")
        ).lower()
        stage_id = _text(body, "stageId", required=False) or self._next_id()
        return PipelineStage(
            stage_id,
            label,
            _int(body, "displayOrder", 0),
            {"isClosed": closed, "probability": probability},
            now,
            now,
        )

    def list_pipelines(self, request: Request) -> Response:
        pipelines = sorted(
            (p for p in self._pipelines(request).values() if not p.archived),
            key=lambda p: (p.display_order, p.label),
        )
        return Response(200, {"results": [p.describe() for p in pipelines]})

    def create_pipeline(self, request: Request) -> Response:
        pipelines = self._pipelines(request)
        body = json_object(request)
        label = _text(body, "label") or ""
        if any(p.label == label and not p.archived for p in pipelines.values()):
            raise HubSpotError(409, f"A pipeline with label {label} already exists.", "CONFLICT")
        stages_raw = body.get("stages")
        if not isinstance(stages_raw, list) or not stages_raw:
            raise validation_error("A pipeline needs at least one stage")
        now = self.sandbox.clock.now()
        pipeline_id = _text(body, "pipelineId", required=False) or self._next_id()
        if pipeline_id in pipelines:
            raise HubSpotError(409, f"A pipeline with id {pipeline_id} already exists.", "CONFLICT")
        pipeline = Pipeline(pipeline_id, label, _int(body, "displayOrder", len(pipelines)), [], now, now)
        for raw in stages_raw:
            pipeline.stages.append(self._new_stage(raw, pipeline, now))
        pipelines[pipeline_id] = pipeline
        return Response(201, pipeline.describe())

    def read_pipeline(self, request: Request) -> Response:
        return Response(200, self._pipeline(request).describe())

    def update_pipeline(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        body = json_object(request)
        if "label" in body:
            pipeline.label = _text(body, "label") or pipeline.label
        if "displayOrder" in body:
            pipeline.display_order = _int(body, "displayOrder", pipeline.display_order)
        pipeline.updated_at = self.sandbox.clock.now()
        return Response(200, pipeline.describe())

    def archive_pipeline(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        live = [p for p in self._pipelines(request).values() if not p.archived]
        if len(live) == 1:
            raise validation_error("The last pipeline of an object type cannot be deleted.")
        pipeline.archived = True
        pipeline.updated_at = self.sandbox.clock.now()
        return no_content()

    def list_stages(self, request: Request) -> Response:
        return Response(200, {"results": [s.describe() for s in self._pipeline(request).live_stages()]})

    def _stage(self, request: Request) -> tuple[Pipeline, PipelineStage]:
        pipeline = self._pipeline(request)
        stage_id = request.path_params["stageId"]
        stage = pipeline.stage(stage_id)
        if stage is None:
            raise not_found(
                f"Unable to find stage {stage_id} in pipeline {pipeline.id}", context={"stageId": [stage_id]}
            )
        return pipeline, stage

    def create_stage(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        stage = self._new_stage(json_object(request), pipeline, self.sandbox.clock.now())
        pipeline.stages.append(stage)
        return Response(201, stage.describe())

    def read_stage(self, request: Request) -> Response:
        return Response(200, self._stage(request)[1].describe())

    def update_stage(self, request: Request) -> Response:
        _, stage = self._stage(request)
        body = json_object(request)
        if "label" in body:
            stage.label = _text(body, "label") or stage.label
        if "displayOrder" in body:
            stage.display_order = _int(body, "displayOrder", stage.display_order)
        metadata = body.get("metadata")
        if isinstance(metadata, Mapping):
            stage.metadata.update({str(k): str(v) for k, v in metadata.items()})
        stage.updated_at = self.sandbox.clock.now()
        return Response(200, stage.describe())

    def archive_stage(self, request: Request) -> Response:
        pipeline, stage = self._stage(request)
        if len(pipeline.live_stages()) == 1:
            raise validation_error("The last stage of a pipeline cannot be deleted.")
        stage.archived = True
        return no_content()

    # ---- owners

    def list_owners(self, request: Request) -> Response:
        limit = int_arg(request, "limit", 100, 500)
        archived = bool_arg(request, "archived")
        email = (request.arg("email") or "").casefold()
        owners = [
            o
            for o in self.portal.owners
            if o.archived == archived and (not email or o.email.casefold() == email)
        ]
        after = request.arg("after")
        start = int(after) if after and after.isdigit() else 0
        page = owners[start : start + limit]
        body: dict[str, Any] = {"results": [o.describe() for o in page]}
        if start + limit < len(owners):
            cursor = str(start + limit)
            body["paging"] = {
                "next": {"after": cursor, "link": f"{self.sandbox.base_url}/crm/v3/owners?after={cursor}"}
            }
        return Response(200, body)

    def read_owner(self, request: Request) -> Response:
        wanted = request.path_params["ownerId"]
        by_user = (request.arg("idProperty") or "id") == "userId"
        archived = bool_arg(request, "archived")
        for owner in self.portal.owners:
            key = str(owner.user_id) if by_user else owner.id
            if key == wanted and owner.archived == archived:
                return Response(200, owner.describe())
        raise not_found(f"Owner {wanted} not found", context={"ownerId": [wanted]})

    # ---- currencies (Settings API: read side)

    def company_currency(self, request: Request) -> Response:
        settings = self.portal.currencies
        return Response(200, {"id": settings.company_currency, "createdAt": instant(settings.created_at)})

    def current_exchange_rates(self, request: Request) -> Response:
        settings = self.portal.currencies
        stamp = instant(settings.created_at)
        results = [
            {
                "id": str(900_000 + index),
                "fromCurrencyCode": code,
                "toCurrencyCode": settings.company_currency,
                "conversionRate": float(rate),
                "effectiveAt": stamp,
                "createdAt": stamp,
                "updatedAt": stamp,
                "visibleInUI": True,
            }
            for index, (code, rate) in enumerate(sorted(settings.rates.items()))
        ]
        return Response(200, {"results": results})

    def currency_codes(self, request: Request) -> Response:
        codes = [
            {"currencyCode": code, "currencyName": name}
            for code, name in sorted(SUPPORTED_CURRENCIES.items())
        ]
        return Response(200, {"results": codes})
