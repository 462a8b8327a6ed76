"""CRM object endpoints: basic CRUD, list, batch read/create/update/upsert/archive and search.

Batch semantics reproduced from HubSpot's documentation:
- at most 100 inputs (50 for a batch read with ``propertiesWithHistory``), else 400;
- batch read and batch update answer 207 with ``errors[]`` for ids that do not exist and
  return the rest;
- batch create and upsert are all-or-nothing unless every input carries an
  ``objectWriteTraceId`` (HubSpot's opt-in to partial success): then valid inputs are written
  and the failed ones come back in a 207 ``errors[]`` with their ``objectWriteTraceId``;
- duplicate ids in one update/upsert batch are refused (400).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ledgerlink_local.sandboxes.core import Request, Response
from ledgerlink_local.sandboxes.hubspot.associations import AssociationType
from ledgerlink_local.sandboxes.hubspot.errors import (
    HubSpotError,
    PropertyValidationError,
    not_found,
    standard_error,
    standard_error_from,
    validation_error,
)
from ledgerlink_local.sandboxes.hubspot.model import OBJECT_TYPES, ObjectType, find_object_type, object_type
from ledgerlink_local.sandboxes.hubspot.routing import (
    MAX_BATCH_INPUTS,
    MAX_HISTORY_BATCH_INPUTS,
    RouteGroup,
    batch_inputs,
    batch_response,
    bool_arg,
    int_arg,
    json_body,
    json_object,
    list_arg,
    no_content,
)
from ledgerlink_local.sandboxes.hubspot.search import parse_search, run_search
from ledgerlink_local.sandboxes.hubspot.store import CrmObject, fold_unique

LIST_DEFAULT_LIMIT = 10
LIST_MAX_LIMIT = 100


@dataclass
class _Planned:
    """One batch input after validation: what to write, or why it failed."""

    index: int
    trace_id: str | None
    values: Mapping[str, Any] | None = None
    record: CrmObject | None = None  # the record an update/upsert applies to
    id_value: str | None = None
    associations: list[tuple[ObjectType, str, AssociationType]] | None = None
    error: HubSpotError | PropertyValidationError | None = None


class CrmObjectsApi(RouteGroup):
    def register(self) -> None:
        add = self.sandbox.add_route
        base = "/crm/v3/objects/{objectType}"
        add("POST", base + "/batch/read", self.batch_read)
        add("POST", base + "/batch/create", self.batch_create)
        add("POST", base + "/batch/update", self.batch_update)
        add("POST", base + "/batch/upsert", self.batch_upsert)
        add("POST", base + "/batch/archive", self.batch_archive)
        add("POST", base + "/search", self.search)
        add("GET", base, self.list_objects)
        add("POST", base, self.create)
        add("GET", base + "/{objectId}", self.read)
        add("PATCH", base + "/{objectId}", self.update)
        add("DELETE", base + "/{objectId}", self.archive)

    # ---- helpers

    def _type(self, request: Request) -> ObjectType:
        return object_type(request.path_params["objectType"])

    def _describe(
        self,
        record: CrmObject,
        properties: list[str] | None = None,
        *,
        with_history: list[str] | None = None,
        associations: list[str] | None = None,
        everything_set: bool = False,
    ) -> dict[str, Any]:
        catalog = self.portal.catalog(record.object_type)
        requested = sorted(record.values) if everything_set else properties
        body: dict[str, Any] = record.describe(catalog, requested, with_history)
        if everything_set:
            body["properties"] = {k: v for k, v in body["properties"].items() if v is not None}
        if associations:
            body["associations"] = self._v3_associations(record, associations)
        return body

    def _v3_associations(self, record: CrmObject, names: list[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in names:
            target = find_object_type(name)
            if target is None:
                continue  # HubSpot ignores association types it does not know
            results = [
                {"id": to_id, "type": kind.name}
                for to_id, kinds in self.portal.associations.targets(
                    record.object_type.name, record.id, target.name
                )
                for kind in kinds
            ]
            if results:
                found[target.association_key] = {"results": results}
        return found

    def _inline_associations(
        self, source: ObjectType, raw: Any
    ) -> list[tuple[ObjectType, str, AssociationType]]:
        """Validate ``associations`` of a create input before anything is written."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise validation_error("associations must be a list")
        planned = []
        for item in raw:
            to = item.get("to") if isinstance(item, Mapping) else None
            types = item.get("types") if isinstance(item, Mapping) else None
            if not isinstance(to, Mapping) or "id" not in to or not isinstance(types, list) or not types:
                raise validation_error("each association needs to.id and a non-empty types list")
            to_id = str(to["id"])
            for spec in types:
                kind = self._association_type(source, spec)
                target = next(t for t in OBJECT_TYPES if t.name == kind.to_type)
                if self.portal.get(target, to_id) is None:
                    raise HubSpotError(
                        400,
                        f"{target.singular} {to_id} does not exist and cannot be associated.",
                        "VALIDATION_ERROR",
                        context={"toObjectId": [to_id]},
                    )
                planned.append((target, to_id, kind))
        return planned

    def _association_type(self, source: ObjectType, spec: Any) -> AssociationType:
        if not isinstance(spec, Mapping):
            raise validation_error("each association type needs associationCategory and associationTypeId")
        category = spec.get("associationCategory")
        type_id = spec.get("associationTypeId")
        try:
            type_id_int = int(str(type_id))
        except ValueError:
            raise validation_error(f"associationTypeId must be an integer, got {type_id!r}") from None
        kind = self.portal.association_types.find(str(category), type_id_int)
        if kind is None or kind.from_type != source.name:
            raise validation_error(
                f"{category} {type_id} is not a valid association type from {source.name}.",
                context={"associationTypeId": [str(type_id)]},
            )
        return kind

    def _link(self, record: CrmObject, planned: list[tuple[ObjectType, str, AssociationType]]) -> None:
        for target, to_id, kind in planned:
            self.portal.associations.add(record.object_type.name, record.id, target.name, to_id, kind)

    def _properties_of(self, item: Any) -> Mapping[str, Any]:
        if not isinstance(item, Mapping):
            raise validation_error("each input must be an object")
        properties = item.get("properties", {})
        if not isinstance(properties, Mapping):
            raise validation_error("properties must be an object of property names to values")
        return properties

    # ---- basic

    def list_objects(self, request: Request) -> Response:
        kind = self._type(request)
        limit = int_arg(request, "limit", LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT)
        after = request.arg("after")
        archived = bool_arg(request, "archived")
        records = self.portal.archived_objects(kind) if archived else self.portal.live_objects(kind)
        if after:
            if not after.isdigit():
                raise validation_error(f"after must be a paging cursor from a previous page, got {after}")
            records = [r for r in records if r.id.isdigit() and int(r.id) > int(after)]
        page = records[:limit]
        properties = list_arg(request, "properties")
        associations = list_arg(request, "associations")
        body: dict[str, Any] = {
            "results": [
                self._describe(r, properties or None, associations=associations or None) for r in page
            ]
        }
        if len(records) > limit:
            cursor = page[-1].id
            body["paging"] = {
                "next": {"after": cursor, "link": f"{self.sandbox.base_url}{request.path}?after={cursor}"}
            }
        return Response(200, body)

    def create(self, request: Request) -> Response:
        kind = self._type(request)
        body = json_object(request)
        properties = self._properties_of(body)
        try:
            self.portal.prepare_create(kind, properties)
        except PropertyValidationError as error:
            raise error.as_http_error(self.portal.portal_id) from None
        planned = self._inline_associations(kind, body.get("associations"))
        record = self.portal.create(kind, properties)
        self._link(record, planned)
        return Response(201, self._describe(record, everything_set=True))

    def _record(self, request: Request, kind: ObjectType) -> CrmObject | None:
        return self.portal.get(
            kind,
            request.path_params["objectId"],
            request.arg("idProperty"),
            archived=bool_arg(request, "archived"),
        )

    def read(self, request: Request) -> Response:
        kind = self._type(request)
        record = self._record(request, kind)
        if record is None:
            raise not_found(context={"id": [request.path_params["objectId"]]})
        return Response(
            200,
            self._describe(
                record,
                list_arg(request, "properties") or None,
                with_history=list_arg(request, "propertiesWithHistory") or None,
                associations=list_arg(request, "associations") or None,
            ),
        )

    def update(self, request: Request) -> Response:
        kind = self._type(request)
        record = self._record(request, kind)
        if record is None:
            raise not_found(context={"id": [request.path_params["objectId"]]})
        properties = self._properties_of(json_object(request))
        try:
            self.portal.update(record, properties)
        except PropertyValidationError as error:
            raise error.as_http_error(self.portal.portal_id) from None
        return Response(200, self._describe(record, everything_set=True))

    def archive(self, request: Request) -> Response:
        kind = self._type(request)
        record = self.portal.get(kind, request.path_params["objectId"])
        if record is not None:
            self.portal.archive(record)
        return no_content()  # archiving a missing record is not an error

    # ---- batch

    def batch_read(self, request: Request) -> Response:
        kind = self._type(request)
        started = self.sandbox.clock.now()
        body = json_object(request)
        with_history = body.get("propertiesWithHistory") or []
        limit = MAX_HISTORY_BATCH_INPUTS if with_history else MAX_BATCH_INPUTS
        what = "a batch request for property histories" if with_history else "a batch request"
        inputs = batch_inputs(body, limit, what)
        id_property = body.get("idProperty")
        self.portal.check_id_property(kind, id_property)
        archived = bool_arg(request, "archived")
        properties = body.get("properties") or None
        results, missing = [], []
        for item in inputs:
            wanted = str(item.get("id")) if isinstance(item, Mapping) and item.get("id") is not None else None
            if wanted is None:
                raise validation_error("each input needs an id")
            record = self.portal.get(kind, wanted, id_property, archived=archived)
            if record is None:
                missing.append(wanted)
            else:
                results.append(self._describe(record, properties, with_history=with_history or None))
        errors = [_objects_not_found(kind, missing)] if missing else []
        return batch_response(started, self.sandbox.clock.now(), results, errors)

    def batch_archive(self, request: Request) -> Response:
        kind = self._type(request)
        for item in batch_inputs(json_object(request)):
            if not isinstance(item, Mapping) or item.get("id") is None:
                raise validation_error("each input needs an id")
            record = self.portal.get(kind, str(item["id"]))
            if record is not None:
                self.portal.archive(record)
        return no_content()

    def batch_create(self, request: Request) -> Response:
        kind = self._type(request)
        started = self.sandbox.clock.now()
        seen_unique: dict[tuple[str, str], int] = {}

        def prepare(step: _Planned, item: Any) -> bool:
            properties = self._properties_of(item)
            step.values = properties
            self.portal.prepare_create(kind, properties)
            self._check_batch_unique(kind, properties, seen_unique, step.index)
            step.associations = self._inline_associations(kind, item.get("associations"))
            return True

        def write(step: _Planned) -> dict[str, Any]:
            assert step.values is not None
            record = self.portal.create(kind, step.values)
            self._link(record, step.associations or [])
            return self._describe(record, everything_set=True)

        planned = self._plan(batch_inputs(json_object(request)), prepare)
        results, errors = self._write(planned, write)
        return batch_response(started, self.sandbox.clock.now(), results, errors, success_status=201)

    def batch_update(self, request: Request) -> Response:
        kind = self._type(request)
        started = self.sandbox.clock.now()
        inputs = batch_inputs(json_object(request))
        _refuse_duplicate_ids(inputs)
        missing: list[str] = []

        def prepare(step: _Planned, item: Any) -> bool:
            properties = self._properties_of(item)
            wanted = item.get("id")
            if wanted is None:
                raise validation_error("each input needs an id")
            record = self.portal.get(kind, str(wanted), item.get("idProperty"))
            if record is None:
                missing.append(str(wanted))
                return False
            step.record, step.values = record, properties
            self.portal.prepare_update(record, properties)
            return True

        def write(step: _Planned) -> dict[str, Any]:
            assert step.record is not None and step.values is not None
            self.portal.update(step.record, step.values)
            return self._describe(step.record, everything_set=True)

        planned = self._plan(inputs, prepare)
        results, errors = self._write(planned, write, echo_trace_id=False)
        if missing:
            errors.append(_objects_not_found(kind, missing))
        return batch_response(started, self.sandbox.clock.now(), results, errors)

    def batch_upsert(self, request: Request) -> Response:
        kind = self._type(request)
        started = self.sandbox.clock.now()
        inputs = batch_inputs(json_object(request))
        _refuse_duplicate_ids(inputs)
        seen_unique: dict[tuple[str, str], int] = {}

        def prepare(step: _Planned, item: Any) -> bool:
            properties = dict(self._properties_of(item))
            id_property = item.get("idProperty")
            if not id_property or id_property == "hs_object_id":
                raise validation_error(
                    "Upsert needs idProperty: the name of a property with unique values "
                    "(hasUniqueValue), or email for contacts."
                )
            wanted = item.get("id")
            if wanted is None or str(wanted) == "":
                raise validation_error("each input needs an id: the unique value to upsert by")
            step.id_value = str(wanted)
            record = self.portal.get(kind, step.id_value, id_property)
            properties[id_property] = step.id_value
            step.values, step.record = properties, record
            if record is None:
                self.portal.prepare_create(kind, properties)
                self._check_batch_unique(kind, properties, seen_unique, step.index)
            else:
                self.portal.prepare_update(record, properties)
            return True

        def write(step: _Planned) -> dict[str, Any]:
            assert step.values is not None
            created = step.record is None
            if step.record is None:
                record = self.portal.create(kind, step.values)
            else:
                record = step.record
                self.portal.update(record, step.values)
            described = self._describe(record, everything_set=True)
            described["new"] = created
            return described

        planned = self._plan(inputs, prepare)
        results, errors = self._write(planned, write)
        return batch_response(started, self.sandbox.clock.now(), results, errors)

    # ---- the partial-success protocol shared by batch create, update and upsert

    def _plan(self, inputs: list[Any], prepare: Callable[[_Planned, Any], bool]) -> list[_Planned]:
        """Validate every input before anything is written. ``prepare`` fills in one step, or
        returns False to leave the input out; a HubSpot error stays on its step."""
        planned: list[_Planned] = []
        for index, item in enumerate(inputs):
            step = _Planned(index, _trace_id(item))
            try:
                if not prepare(step, item):
                    continue
            except (HubSpotError, PropertyValidationError) as error:
                step.error = error
            planned.append(step)
        return planned

    def _write(
        self,
        planned: list[_Planned],
        write: Callable[[_Planned], dict[str, Any]],
        *,
        echo_trace_id: bool = True,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Write the valid steps (``write`` answers the result) and list the failed ones, unless
        a failure must fail the whole batch (see _refuse_unless_multi_status)."""
        self._refuse_unless_multi_status(planned)
        results, errors = [], []
        for step in planned:
            if step.error is not None:
                errors.append(self._batch_error(step))
                continue
            described = write(step)
            if echo_trace_id and step.trace_id:
                described["objectWriteTraceId"] = step.trace_id
            results.append(described)
        return results, errors

    def _check_batch_unique(
        self, kind: ObjectType, properties: Mapping[str, Any], seen: dict[tuple[str, str], int], index: int
    ) -> None:
        """Two inputs of one batch may not claim the same unique value."""
        for name in self.portal.unique_names(kind):
            value = properties.get(name)
            if value in (None, ""):
                continue
            key = (name, fold_unique(name, str(value)))
            if key in seen:
                raise HubSpotError(
                    409,
                    f'Inputs {seen[key]} and {index} of this batch both set the unique property "{name}" '
                    f'to "{value}".',
                    "CONFLICT",
                    context={"propertyName": [name]},
                )
            seen[key] = index

    def _refuse_unless_multi_status(self, planned: list[_Planned]) -> None:
        """Without an objectWriteTraceId on every input, one bad input fails the whole batch."""
        failed = [s for s in planned if s.error is not None]
        if not failed or all(s.trace_id for s in planned):
            return
        error = failed[0].error
        if isinstance(error, PropertyValidationError):
            raise error.as_http_error(self.portal.portal_id)
        assert error is not None
        raise error

    def _batch_error(self, step: _Planned) -> dict[str, Any]:
        assert step.error is not None
        entry = standard_error_from(step.error, self.portal.portal_id)
        if step.trace_id:
            entry["context"]["objectWriteTraceId"] = [step.trace_id]
        if step.id_value is not None:
            entry["context"].setdefault("ids", [step.id_value])
        return entry

    # ---- search

    def search(self, request: Request) -> Response:
        kind = self._type(request)
        catalog = self.portal.catalog(kind)
        parsed = parse_search(json_body(request, required=False) or {}, catalog)
        store = self.portal.associations

        def associated(from_type: str, from_id: str, to_type: str, to_id: str) -> bool:
            return bool(store.kinds(from_type, from_id, to_type, to_id))

        page, total = run_search(parsed, catalog, self.portal.live_objects(kind), associated)
        body: dict[str, Any] = {
            "total": total,
            "results": [r.describe(catalog, list(parsed.properties) or None) for r in page],
        }
        if parsed.offset + len(page) < total:
            body["paging"] = {"next": {"after": str(parsed.offset + len(page))}}
        return Response(200, body)


def _trace_id(item: Any) -> str | None:
    if isinstance(item, Mapping) and item.get("objectWriteTraceId"):
        return str(item["objectWriteTraceId"])
    return None


def _objects_not_found(kind: ObjectType, ids: list[str]) -> dict[str, Any]:
    """The ``errors[]`` entry of a batch whose ids match no record."""
    return standard_error(
        404,
        "OBJECT_NOT_FOUND",
        f"Could not get some {kind.label} objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        context={"ids": ids},
    )


def _refuse_duplicate_ids(inputs: list[Any]) -> None:
    ids = [str(i.get("id")) for i in inputs if isinstance(i, Mapping) and i.get("id") is not None]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise validation_error(
            f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique",
            context={"ids": duplicates},
        )
