"""Associations v4 endpoints (records) and association labels (schema).

Labels are served under both ``/crm/v4/associations/{from}/{to}/labels`` (the path HubSpot's
docs and Python SDK use) and ``/crm/associations/v4/{from}/{to}/labels`` (the path in HubSpot's
published OpenAPI file). Associating a record that does not exist answers 404 (single) or an
``errors[]`` entry (batch); HubSpot's exact wording for these is unverified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgerlink_local.sandboxes.core import Request, Response
from ledgerlink_local.sandboxes.hubspot.associations import USER_DEFINED, AssociationType
from ledgerlink_local.sandboxes.hubspot.errors import HubSpotError, standard_error, validation_error
from ledgerlink_local.sandboxes.hubspot.model import ObjectType, object_type
from ledgerlink_local.sandboxes.hubspot.routing import (
    MAX_ASSOCIATION_BATCH_INPUTS,
    RouteGroup,
    batch_inputs,
    batch_response,
    int_arg,
    json_body,
    json_object,
    no_content,
)

READ_DEFAULT_LIMIT = 500


class AssociationsApi(RouteGroup):
    def register(self) -> None:
        add = self.sandbox.add_route
        objects = "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations"
        add("PUT", objects + "/default/{toObjectType}/{toObjectId}", self.create_default)
        add("GET", objects + "/{toObjectType}", self.read)
        add("PUT", objects + "/{toObjectType}/{toObjectId}", self.create_typed)
        add("DELETE", objects + "/{toObjectType}/{toObjectId}", self.archive)
        batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"
        add("POST", batch + "/associate/default", self.batch_default)
        add("POST", batch + "/create", self.batch_create)
        add("POST", batch + "/read", self.batch_read)
        add("POST", batch + "/archive", self.batch_archive)
        add("POST", batch + "/labels/archive", self.batch_archive_labels)
        for prefix in ("/crm/v4/associations", "/crm/associations/v4"):
            labels = prefix + "/{fromObjectType}/{toObjectType}/labels"
            add("GET", labels, self.list_labels)
            add("POST", labels, self.create_label)
            add("PUT", labels, self.update_label)
            add("DELETE", labels + "/{associationTypeId}", self.delete_label)

    # ---- helpers

    def _types(self, request: Request) -> tuple[ObjectType, ObjectType]:
        return object_type(request.path_params["fromObjectType"]), object_type(
            request.path_params["toObjectType"]
        )

    def _exists(self, kind: ObjectType, object_id: str) -> bool:
        return self.portal.get(kind, object_id) is not None

    def _require(self, kind: ObjectType, object_id: str) -> None:
        if not self._exists(kind, object_id):
            raise HubSpotError(
                404,
                f"No {kind.singular} with ID {object_id} exists.",
                "OBJECT_NOT_FOUND",
                context={"id": [object_id], "objectType": [kind.name]},
            )

    def _spec_list(self, source: ObjectType, target: ObjectType, raw: Any) -> list[AssociationType]:
        if not isinstance(raw, list) or not raw:
            raise validation_error(
                "types must be a non-empty list of {associationCategory, associationTypeId}"
            )
        kinds = []
        for spec in raw:
            if not isinstance(spec, Mapping):
                raise validation_error("each type needs associationCategory and associationTypeId")
            kinds.append(
                self.portal.association_types.require(
                    source.name,
                    target.name,
                    str(spec.get("associationCategory")),
                    _type_id(spec.get("associationTypeId")),
                )
            )
        return kinds

    def _labels_between(
        self, source: ObjectType, from_id: str, target: ObjectType, to_id: str
    ) -> dict[str, Any]:
        kinds = self.portal.associations.kinds(source.name, from_id, target.name, to_id)
        return {
            "fromObjectTypeId": source.type_id,
            "fromObjectId": from_id,
            "toObjectTypeId": target.type_id,
            "toObjectId": to_id,
            "labels": [k.label for k in kinds if k.label],
        }

    def _default_result(self, from_id: str, to_id: str, kind: AssociationType) -> dict[str, Any]:
        return {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": kind.spec()}

    def _id_of(self, raw: Any, field: str) -> str:
        node = raw.get(field) if isinstance(raw, Mapping) else None
        if not isinstance(node, Mapping) or node.get("id") is None:
            raise validation_error(f"each input needs {field}.id")
        return str(node["id"])

    # ---- single record

    def create_default(self, request: Request) -> Response:
        source, target = self._types(request)
        from_id, to_id = request.path_params["fromObjectId"], request.path_params["toObjectId"]
        kind = self.portal.association_types.default(source.name, target.name)
        self._require(source, from_id)
        self._require(target, to_id)
        started = self.sandbox.clock.now()
        self.portal.associations.add(source.name, from_id, target.name, to_id, kind)
        inverse = self.portal.association_types.find(kind.category, kind.inverse_id)
        results = [self._default_result(from_id, to_id, kind)]
        if inverse is not None:
            results.append(self._default_result(to_id, from_id, inverse))
        return batch_response(started, self.sandbox.clock.now(), results, [])

    def create_typed(self, request: Request) -> Response:
        source, target = self._types(request)
        from_id, to_id = request.path_params["fromObjectId"], request.path_params["toObjectId"]
        kinds = self._spec_list(source, target, json_body(request))
        self._require(source, from_id)
        self._require(target, to_id)
        for kind in kinds:
            self.portal.associations.add(source.name, from_id, target.name, to_id, kind)
        return Response(201, self._labels_between(source, from_id, target, to_id))

    def read(self, request: Request) -> Response:
        source, target = self._types(request)
        from_id = request.path_params["fromObjectId"]
        limit = int_arg(request, "limit", READ_DEFAULT_LIMIT, READ_DEFAULT_LIMIT)
        after = request.arg("after")
        targets = self.portal.associations.targets(source.name, from_id, target.name)
        start = int(after) if after and after.isdigit() else 0
        page = targets[start : start + limit]
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": to_id, "associationTypes": [k.spec_with_label() for k in kinds]}
                for to_id, kinds in page
            ]
        }
        if start + limit < len(targets):
            cursor = str(start + limit)
            body["paging"] = {
                "next": {"after": cursor, "link": f"{self.sandbox.base_url}{request.path}?after={cursor}"}
            }
        return Response(200, body)

    def archive(self, request: Request) -> Response:
        source, target = self._types(request)
        self.portal.associations.remove_pair(
            source.name, request.path_params["fromObjectId"], target.name, request.path_params["toObjectId"]
        )
        return no_content()

    # ---- batch

    def _missing_error(self, kind: ObjectType, ids: list[str]) -> dict[str, Any]:
        return standard_error(
            404,
            "OBJECT_NOT_FOUND",
            f"Could not find some {kind.label} objects: they may be deleted or not exist.",
            context={"ids": ids},
        )

    def batch_default(self, request: Request) -> Response:
        source, target = self._types(request)
        kind = self.portal.association_types.default(source.name, target.name)
        inverse = self.portal.association_types.find(kind.category, kind.inverse_id)
        started = self.sandbox.clock.now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in batch_inputs(json_object(request), MAX_ASSOCIATION_BATCH_INPUTS):
            from_id, to_id = self._id_of(item, "from"), self._id_of(item, "to")
            missing = [(k, i) for k, i in ((source, from_id), (target, to_id)) if not self._exists(k, i)]
            if missing:
                errors.extend(self._missing_error(k, [i]) for k, i in missing)
                continue
            self.portal.associations.add(source.name, from_id, target.name, to_id, kind)
            results.append(self._default_result(from_id, to_id, kind))
            if inverse is not None:
                results.append(self._default_result(to_id, from_id, inverse))
        # The spec knows only 200 here: failures ride along in errors[] of a 200.
        response = batch_response(started, self.sandbox.clock.now(), results, errors)
        response.status = 200
        return response

    def batch_create(self, request: Request) -> Response:
        source, target = self._types(request)
        started = self.sandbox.clock.now()
        results, errors = [], []
        for item in batch_inputs(json_object(request), MAX_ASSOCIATION_BATCH_INPUTS):
            from_id, to_id = self._id_of(item, "from"), self._id_of(item, "to")
            try:
                kinds = self._spec_list(source, target, item.get("types"))
            except HubSpotError as error:
                errors.append(standard_error(400, error.category, error.message, context=error.context))
                continue
            missing = [(k, i) for k, i in ((source, from_id), (target, to_id)) if not self._exists(k, i)]
            if missing:
                errors.extend(self._missing_error(k, [i]) for k, i in missing)
                continue
            for kind in kinds:
                self.portal.associations.add(source.name, from_id, target.name, to_id, kind)
            results.append(self._labels_between(source, from_id, target, to_id))
        return batch_response(started, self.sandbox.clock.now(), results, errors, success_status=201)

    def batch_read(self, request: Request) -> Response:
        source, target = self._types(request)
        started = self.sandbox.clock.now()
        results, errors = [], []
        for item in batch_inputs(json_object(request), MAX_ASSOCIATION_BATCH_INPUTS):
            if not isinstance(item, Mapping) or item.get("id") is None:
                raise validation_error("each input needs an id")
            from_id = str(item["id"])
            targets = self.portal.associations.targets(source.name, from_id, target.name)
            if not targets:
                errors.append(
                    standard_error(
                        404,
                        "OBJECT_NOT_FOUND",
                        f"No {target.singular} is associated with {source.singular} {from_id}.",
                        context={"fromObjectId": [from_id]},
                    )
                )
                continue
            results.append(
                {
                    "from": {"id": from_id},
                    "to": [
                        {"toObjectId": to_id, "associationTypes": [k.spec_with_label() for k in kinds]}
                        for to_id, kinds in targets
                    ],
                }
            )
        return batch_response(started, self.sandbox.clock.now(), results, errors)

    def batch_archive(self, request: Request) -> Response:
        source, target = self._types(request)
        for item in batch_inputs(json_object(request), MAX_ASSOCIATION_BATCH_INPUTS):
            from_id = self._id_of(item, "from")
            to_list = item.get("to")
            if not isinstance(to_list, list):
                raise validation_error("each input needs a to list of {id}")
            for to in to_list:
                if isinstance(to, Mapping) and to.get("id") is not None:
                    self.portal.associations.remove_pair(source.name, from_id, target.name, str(to["id"]))
        return no_content()

    def batch_archive_labels(self, request: Request) -> Response:
        source, target = self._types(request)
        for item in batch_inputs(json_object(request), MAX_ASSOCIATION_BATCH_INPUTS):
            from_id, to_id = self._id_of(item, "from"), self._id_of(item, "to")
            kinds = self._spec_list(source, target, item.get("types") if isinstance(item, Mapping) else None)
            self.portal.associations.remove_types(source.name, from_id, target.name, to_id, kinds)
        return no_content()

    # ---- labels (association schema)

    def list_labels(self, request: Request) -> Response:
        source, target = self._types(request)
        kinds = self.portal.association_types.between(source.name, target.name)
        return Response(200, {"results": [k.spec_with_label() for k in kinds]})

    def create_label(self, request: Request) -> Response:
        source, target = self._types(request)
        body = json_object(request)
        label, name = body.get("label"), body.get("name")
        inverse = body.get("inverseLabel")
        if not isinstance(label, str) or not isinstance(name, str):
            raise validation_error("label and name are required strings")
        created = self.portal.association_types.create_label(
            source.name, target.name, label, name, inverse if isinstance(inverse, str) else None
        )
        return Response(200, {"results": [k.spec_with_label() for k in created]})

    def update_label(self, request: Request) -> Response:
        source, target = self._types(request)
        body = json_object(request)
        label = body.get("label")
        if not isinstance(label, str):
            raise validation_error("label is required")
        type_id = _type_id(body.get("associationTypeId"))
        inverse = body.get("inverseLabel")
        self.portal.association_types.update_label(
            source.name, target.name, type_id, label, inverse if isinstance(inverse, str) else None
        )
        return no_content()

    def delete_label(self, request: Request) -> Response:
        source, target = self._types(request)
        type_id = _type_id(request.path_params["associationTypeId"])
        removed = self.portal.association_types.delete_label(source.name, target.name, type_id)
        # Records lose the deleted label in both directions.
        self.portal.associations.purge_types(USER_DEFINED, [removed.type_id, removed.inverse_id])
        return no_content()


def _type_id(raw: Any) -> int:
    """An ``associationTypeId`` from a body or a path, as the integer HubSpot keys types by."""
    try:
        return int(str(raw))
    except ValueError:
        raise validation_error("associationTypeId must be an integer") from None
