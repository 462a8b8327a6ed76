"""The HubSpot CRM client: batch endpoints only where a batch exists, at most 100 inputs a call.

- objects v3: ``batch/upsert`` (by a unique property), ``batch/create`` (with associations to
  existing records in the same call), ``batch/update``, ``batch/read``, ``batch/archive`` and ``search`` (its own per-second budget: ``limit_group=HUBSPOT_SEARCH``);
- associations v4: ``batch/associate/default`` (the unlabelled association; creating one that exists
  changes nothing) and ``batch/read``; they count against the 10-second limit like every call but search
  (HubSpot documents no exemption for them; docs/http-layer.md#rate-limits);
- properties v3: groups and property definitions (``ledgerlink hubspot setup``), and the enabled
  currencies, read from the options of the deal property ``deal_currency_code``.

Every upsert input carries an ``objectWriteTraceId`` (HubSpot's opt-in to partial success): a batch in
which some inputs are invalid writes the valid ones and answers 207 with the failed ones' trace ids, so
one bad record never fails its neighbours. Results and errors come back per input id
(:class:`BatchOutcome`), association failures per pair (:class:`AssociationsFailed`).

A record a user deleted (archived) in HubSpot, or merged away, is an :class:`ObjectsNotFound` naming
the object type and the ids: HubSpot reports them as ``OBJECT_NOT_FOUND`` errors whose ``context.ids``
list the ids (batch read and update answer 207, v4 association creates 200 with ``errors[]``), so the
ids are taken from there, never parsed out of the message. Every call goes through the vendor HTTP layer (portal-wide limits, retries,
breaker); upserts and association creates are safe to repeat, so they are retried like reads. A create
is not: after a 5xx or a timeout it may have landed, so it is sent once and the caller, which knows how
to look for what it made, decides (``ledgerlink.deal_sync.line_items``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import requests

from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.errors import VendorError, body_excerpt
from ledgerlink.http.policy import HUBSPOT_SEARCH
from ledgerlink.secrets import SecretStore

MAX_BATCH_INPUTS: Final = 100
MAX_SEARCH_LIMIT: Final = 200
# HubSpot's batch read takes at most 50 inputs when it returns property histories.
MAX_HISTORY_BATCH_INPUTS: Final = 50
# HubSpot's search allows 5 filter groups of at most 6 filters (18 filters in all) per request.
MAX_FILTER_GROUPS: Final = 5
# Each search IN filter carries at most this many values (HubSpot documents no figure; kept modest).
MAX_IN_VALUES: Final = 100

OBJECT_PATHS: Final = {
    "deals": "deals",
    "line_items": "line_items",
    "companies": "companies",
    "contacts": "contacts",
}

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = MAX_BATCH_INPUTS) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


NOT_FOUND_CATEGORY: Final = "OBJECT_NOT_FOUND"


class HubSpotError(VendorError):
    """HubSpot refused a request or a batch input; the message carries HubSpot's category and message."""

    reason = "hubspot_error"

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message, vendor="hubspot")
        self.retryable = retryable
        self.status = status
        # 401/403: the token or its scopes are refused, whatever the request was.
        self.connection_wide = status in (401, 403)


class ObjectsNotFound(HubSpotError):
    """HubSpot has no live record of ``object_type`` with these ``ids``: a user deleted (archived) or
    merged it, or it never existed.

    Retryable: the same write fails again only as long as something still names those ids; the deal
    sync drops such links and resolves the records again (docs/deal-sync.md#records-deleted-in-hubspot).
    """

    # Retryable (the sync heals the stale link and a later attempt can succeed) but about these
    # records only: never a reason to fail the rest of a batch (ledgerlink.consumer.failures).
    record_scoped = True

    reason = "hubspot_objects_not_found"

    def __init__(self, object_type: str, ids: Iterable[str], detail: str | None = None) -> None:
        self.object_type = object_type
        self.ids = frozenset(ids)
        message = (
            f"HubSpot has no {object_type} {', '.join(sorted(self.ids))} (deleted, merged or never created)"
        )
        super().__init__(f"{message}: {detail}" if detail else message, retryable=True, status=404)


class AssociationsFailed(HubSpotError):
    """Some pairs of an association batch were refused: ``failed[(from id, to id)]`` says why (an
    :class:`ObjectsNotFound` where HubSpot named a missing record of the pair). The others were made."""

    record_scoped = True  # the refused pairs' deals only (ledgerlink.consumer.failures)

    def __init__(self, from_type: str, to_type: str, failed: Mapping[tuple[str, str], HubSpotError]) -> None:
        self.from_type = from_type
        self.to_type = to_type
        self.failed = dict(failed)
        first = next(iter(self.failed.values()))
        retryable = all(error.retryable for error in self.failed.values())
        super().__init__(
            f"HubSpot refused {len(self.failed)} {from_type}→{to_type} associations: {first}",
            retryable=retryable,
            status=first.status,
        )


@dataclass(frozen=True)
class HubSpotObject:
    """A CRM record as HubSpot returns it: id, properties and, for upserts, whether it was created."""

    id: str
    properties: Mapping[str, str | None]
    new: bool = False

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> HubSpotObject:
        return cls(id=str(raw["id"]), properties=dict(raw.get("properties") or {}), new=bool(raw.get("new")))

    def prop(self, name: str) -> str:
        return (self.properties.get(name) or "").strip()


@dataclass
class BatchOutcome:
    """Per-input results of batch calls: ``written[input id]`` or ``failed[input id] = reason``."""

    written: dict[str, HubSpotObject] = field(default_factory=dict)
    failed: dict[str, HubSpotError] = field(default_factory=dict)

    def merge(self, other: BatchOutcome) -> None:
        self.written.update(other.written)
        self.failed.update(other.failed)


@dataclass(frozen=True)
class Upsert:
    """One upsert input: the unique property, its value (the input id) and the properties to write."""

    id_property: str
    id: str
    properties: Mapping[str, str]


@dataclass(frozen=True)
class Create:
    """One create input. ``id`` is the caller's name for it (sent as its ``objectWriteTraceId``, which is
    how the outcome is keyed); ``associations`` are (record id, HubSpot-defined association type id)
    pairs the new record is associated with in the same call."""

    id: str
    properties: Mapping[str, str]
    associations: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Update:
    """One update input by HubSpot record id."""

    id: str
    properties: Mapping[str, str]


class HubSpotClient:
    """One portal. ``scope`` is what the portal's rate limits are counted under (the portal id)."""

    def __init__(self, http: VendorHttpClient, *, scope: str) -> None:
        if not scope:
            raise ValueError("a HubSpot rate-limit scope (the portal id) is required")
        self._http = http
        self.scope = scope
        self.calls = 0

    # ---- objects

    def batch_upsert(self, object_type: str, inputs: Sequence[Upsert]) -> BatchOutcome:
        """Create or update by a unique property. Inputs with the same id are sent once (the last)."""
        unique = list({item.id: item for item in inputs}.values())
        outcome = BatchOutcome()
        for chunk in chunked(unique):
            body = {
                "inputs": [
                    {
                        "id": item.id,
                        "idProperty": item.id_property,
                        "properties": dict(item.properties),
                        "objectWriteTraceId": item.id,
                    }
                    for item in chunk
                ]
            }
            response = self._post(f"/crm/v3/objects/{_path(object_type)}/batch/upsert", body, accept=(207,))
            outcome.merge(
                self._batch_outcome(
                    response, [item.id for item in chunk], key="objectWriteTraceId", object_type=object_type
                )
            )
        return outcome

    def batch_create(self, object_type: str, inputs: Sequence[Create]) -> BatchOutcome:
        """Create records (never retried: see the module docstring). Inputs with the same id are sent
        once (the last); ``written`` and ``failed`` are keyed by input id."""
        unique = list({item.id: item for item in inputs}.values())
        outcome = BatchOutcome()
        for chunk in chunked(unique):
            body = {
                "inputs": [
                    {
                        "properties": dict(item.properties),
                        # The spec requires the list, empty or not.
                        "associations": [
                            {
                                "to": {"id": to_id},
                                "types": [
                                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                                ],
                            }
                            for to_id, type_id in item.associations
                        ],
                        "objectWriteTraceId": item.id,
                    }
                    for item in chunk
                ]
            }
            response = self._post(
                f"/crm/v3/objects/{_path(object_type)}/batch/create", body, accept=(207,), idempotent=False
            )
            outcome.merge(
                self._batch_outcome(
                    response, [item.id for item in chunk], key="objectWriteTraceId", object_type=object_type
                )
            )
        return outcome

    def batch_update(self, object_type: str, updates: Sequence[Update]) -> BatchOutcome:
        unique = list({item.id: item for item in updates}.values())
        outcome = BatchOutcome()
        for chunk in chunked(unique):
            body = {"inputs": [{"id": item.id, "properties": dict(item.properties)} for item in chunk]}
            # Setting the same values again has the same effect: safe to retry.
            response = self._post(f"/crm/v3/objects/{_path(object_type)}/batch/update", body, accept=(207,))
            outcome.merge(
                self._batch_outcome(response, [item.id for item in chunk], key="id", object_type=object_type)
            )
        return outcome

    def batch_read(
        self,
        object_type: str,
        ids: Iterable[str],
        properties: Sequence[str],
        *,
        id_property: str | None = None,
    ) -> dict[str, HubSpotObject]:
        """Records by id (or by ``id_property`` value); ids HubSpot does not know are absent."""
        wanted = sorted(set(ids))
        found: dict[str, HubSpotObject] = {}
        for chunk in chunked(wanted):
            body: dict[str, Any] = {
                "inputs": [{"id": value} for value in chunk],
                "properties": list(properties),
                "propertiesWithHistory": [],
            }
            if id_property:
                body["idProperty"] = id_property
            response = self._post(f"/crm/v3/objects/{_path(object_type)}/batch/read", body, accept=(207,))
            for raw in _json(response).get("results") or []:
                record = HubSpotObject.from_api(raw)
                key = record.prop(id_property) if id_property else record.id
                found[key or record.id] = record
        return found

    def batch_read_history(
        self, object_type: str, ids: Iterable[str], properties: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Each record's history of ``properties`` (newest first, as HubSpot lists them: ``value``,
        ``timestamp``, ``sourceType``, ``sourceId``), by record id; 50 records per call."""
        found: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for chunk in chunked(sorted(set(ids)), MAX_HISTORY_BATCH_INPUTS):
            body = {
                "inputs": [{"id": value} for value in chunk],
                "properties": list(properties),
                "propertiesWithHistory": list(properties),
            }
            response = self._post(f"/crm/v3/objects/{_path(object_type)}/batch/read", body, accept=(207,))
            for raw in _json(response).get("results") or []:
                history = raw.get("propertiesWithHistory") or {}
                found[str(raw["id"])] = {
                    str(name): [dict(entry) for entry in entries or [] if isinstance(entry, Mapping)]
                    for name, entries in history.items()
                }
        return found

    def batch_archive(self, object_type: str, ids: Iterable[str]) -> None:
        """Archive (HubSpot's restorable delete) records by id; archiving an archived record is harmless."""
        for chunk in chunked(sorted(set(ids))):
            self._post(
                f"/crm/v3/objects/{_path(object_type)}/batch/archive",
                {"inputs": [{"id": value} for value in chunk]},
                expect_json=False,
            )

    def search(
        self, object_type: str, filter_groups: Sequence[Mapping[str, Any]], properties: Sequence[str]
    ) -> list[HubSpotObject]:
        """Every record matching any of ``filter_groups`` (at most :data:`MAX_FILTER_GROUPS`), all pages."""
        if not filter_groups:
            return []
        if len(filter_groups) > MAX_FILTER_GROUPS:
            raise ValueError(f"a HubSpot search takes at most {MAX_FILTER_GROUPS} filter groups")
        found: dict[str, HubSpotObject] = {}
        after = "0"
        while True:
            body = {
                "filterGroups": [dict(group) for group in filter_groups],
                "properties": list(properties),
                "sorts": [],
                "limit": MAX_SEARCH_LIMIT,
                "after": after,
            }
            response = self._post(
                f"/crm/v3/objects/{_path(object_type)}/search", body, limit_group=HUBSPOT_SEARCH
            )
            page = _json(response)
            for raw in page.get("results") or []:
                record = HubSpotObject.from_api(raw)
                found[record.id] = record
            next_after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not next_after:
                return list(found.values())
            after = str(next_after)

    # ---- associations v4

    def associate_default(self, from_type: str, to_type: str, pairs: Iterable[tuple[str, str]]) -> None:
        """The default (unlabelled) association for each (from id, to id); existing ones are unchanged.

        Every chunk is sent; then, if HubSpot refused some pairs, :class:`AssociationsFailed` says which.
        """
        unique = sorted(set(pairs))
        failed: dict[tuple[str, str], HubSpotError] = {}
        for chunk in chunked(unique):
            body = {"inputs": [{"from": {"id": a}, "to": {"id": b}} for a, b in chunk]}
            response = self._post(
                f"/crm/v4/associations/{from_type}/{to_type}/batch/associate/default", body, accept=(207,)
            )
            failed.update(_association_failures(_json(response), chunk, from_type, to_type))
        if failed:
            raise AssociationsFailed(from_type, to_type, failed)

    def associations(self, from_type: str, to_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
        """The ids each record is associated with (every page)."""
        result: dict[str, list[str]] = {}
        pending: list[tuple[str, str | None]] = [(value, None) for value in sorted(set(ids))]
        while pending:
            chunk, pending = pending[:MAX_BATCH_INPUTS], pending[MAX_BATCH_INPUTS:]
            body = {
                "inputs": [{"id": value, **({"after": after} if after else {})} for value, after in chunk]
            }
            response = self._post(
                f"/crm/v4/associations/{from_type}/{to_type}/batch/read", body, accept=(207,)
            )
            for item in _json(response).get("results") or []:
                source = str((item.get("from") or {}).get("id"))
                targets = result.setdefault(source, [])
                targets.extend(str(target["toObjectId"]) for target in item.get("to") or [])
                next_after = ((item.get("paging") or {}).get("next") or {}).get("after")
                if next_after:
                    pending.append((source, str(next_after)))
        return result

    # ---- properties

    def property_groups(self, object_type: str) -> set[str]:
        response = self._get(f"/crm/v3/properties/{_path(object_type)}/groups")
        return {str(group["name"]) for group in _json(response).get("results") or []}

    def create_property_group(self, object_type: str, body: Mapping[str, Any]) -> None:
        self._post(f"/crm/v3/properties/{_path(object_type)}/groups", dict(body), idempotent=False)

    def properties(self, object_type: str) -> dict[str, dict[str, Any]]:
        response = self._get(f"/crm/v3/properties/{_path(object_type)}")
        return {str(item["name"]): item for item in _json(response).get("results") or []}

    def create_property(self, object_type: str, body: Mapping[str, Any]) -> None:
        self._post(f"/crm/v3/properties/{_path(object_type)}", dict(body), idempotent=False)

    def update_property(self, object_type: str, name: str, body: Mapping[str, Any]) -> None:
        response = self._http.patch(
            f"/crm/v3/properties/{_path(object_type)}/{name}",
            scope=self.scope,
            json=dict(body),
            idempotent=True,
        )
        self.calls += 1
        _json(response)

    def enabled_currencies(self) -> frozenset[str]:
        """The portal's currencies: the options HubSpot offers for a deal's ``deal_currency_code``."""
        response = self._get("/crm/v3/properties/deals/deal_currency_code")
        options = _json(response).get("options") or []
        return frozenset(str(option["value"]).upper() for option in options if option.get("value"))

    def deal_pipelines(self) -> dict[str, frozenset[str]]:
        """Every deal pipeline's id -> the ids of its stages (``GET /crm/v3/pipelines/deals``)."""
        results = _json(self._get("/crm/v3/pipelines/deals")).get("results") or []
        return {
            str(pipeline["id"]): frozenset(str(stage["id"]) for stage in pipeline.get("stages") or ())
            for pipeline in results
            if pipeline.get("id") is not None
        }

    def deal_stage_labels(self) -> dict[str, str]:
        """Every deal stage's id -> its label as HubSpot's UI shows it (``GET /crm/v3/pipelines/deals``),
        for operator output: a stage id alone ("880017") says nothing to a person."""
        results = _json(self._get("/crm/v3/pipelines/deals")).get("results") or []
        return {
            str(stage["id"]): str(stage.get("label") or stage["id"])
            for pipeline in results
            for stage in pipeline.get("stages") or ()
            if stage.get("id") is not None
        }

    def read_with_associations(
        self, object_type: str, object_id: str, properties: Sequence[str], associations: Sequence[str]
    ) -> tuple[HubSpotObject, dict[str, list[tuple[str, str]]]] | None:
        """One record and the ids it is associated with, in one call (``GET .../{id}?associations=...``):
        ``{to_type: [(id, association type name), ...]}`` in HubSpot's order. None when HubSpot has no such
        (unarchived) record."""
        if not object_id.isdigit():
            return None
        response = self._http.get(
            f"/crm/v3/objects/{_path(object_type)}/{object_id}",
            scope=self.scope,
            params={"properties": ",".join(properties), "associations": ",".join(associations)},
            accept=(404,),
        )
        self.calls += 1
        if response.status_code == 404:
            return None
        body = _json(response)
        found: dict[str, list[tuple[str, str]]] = {}
        for name, value in (body.get("associations") or {}).items():
            results = value.get("results") if isinstance(value, Mapping) else None
            pairs = found.setdefault(str(name), [])
            for result in results or ():
                if isinstance(result, Mapping) and result.get("id") is not None:
                    pairs.append((str(result["id"]), str(result.get("type") or "")))
        return HubSpotObject.from_api(body), found

    def owner_email(self, owner_id: str) -> str | None:
        """The e-mail of an active owner (``GET /crm/v3/owners/{ownerId}``); None when HubSpot has no such
        active owner (404: unknown, or archived, which the endpoint does not return by default)."""
        if not owner_id.isdigit():
            return None
        response = self._http.get(f"/crm/v3/owners/{owner_id}", scope=self.scope, accept=(404,))
        self.calls += 1
        if response.status_code == 404:
            return None
        email = _json(response).get("email")
        return str(email).strip() or None if email else None

    def contact_email(self, contact_id: str) -> str | None:
        """A contact's e-mail (``GET /crm/v3/objects/contacts/{id}?properties=email``); None when the
        contact is gone or has none."""
        if not contact_id.isdigit():
            return None
        response = self._http.get(
            f"/crm/v3/objects/contacts/{contact_id}",
            scope=self.scope,
            params={"properties": "email"},
            accept=(404,),
        )
        self.calls += 1
        if response.status_code == 404:
            return None
        email = (_json(response).get("properties") or {}).get("email")
        return (str(email).strip() or None) if email else None

    # ---- plumbing

    def _get(self, path: str) -> requests.Response:
        response = self._http.get(path, scope=self.scope)
        self.calls += 1
        return response

    def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        accept: tuple[int, ...] = (),
        limit_group: str | None = None,
        idempotent: bool = True,
        expect_json: bool = True,
    ) -> requests.Response:
        kwargs: dict[str, Any] = {"json": body, "idempotent": idempotent, "accept": accept}
        if limit_group is not None:
            kwargs["limit_group"] = limit_group
        response = self._http.post(path, scope=self.scope, **kwargs)
        self.calls += 1
        if expect_json and response.status_code != 204:
            _json(response)  # a non-JSON success body is a protocol error worth failing loudly
        return response

    def _batch_outcome(
        self, response: requests.Response, ids: Sequence[str], *, key: str, object_type: str
    ) -> BatchOutcome:
        body = _json(response)
        outcome = BatchOutcome()
        for raw in body.get("results") or []:
            record = HubSpotObject.from_api(raw)
            marker = str(raw.get(key) or "") if key != "id" else record.id
            if marker:
                outcome.written[marker] = record
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            named = [str(value) for value in (context.get(key) or context.get("ids") or []) if value]
            if not named and error.get(key):
                named = [str(error[key])]
            if not named and error.get("id"):
                named = [str(error["id"])]
            reason = _error(error, object_type, named, status=response.status_code)
            for value in named or [value for value in ids if value not in outcome.written]:
                outcome.failed[value] = reason
        # An input neither written nor named in an error: HubSpot said nothing about it, so it failed.
        for value in ids:
            if value not in outcome.written and value not in outcome.failed and key != "id":
                outcome.failed[value] = HubSpotError("HubSpot's batch answer did not mention this input")
        return outcome


def _path(object_type: str) -> str:
    try:
        return OBJECT_PATHS[object_type]
    except KeyError:
        raise ValueError(f"unknown HubSpot object type {object_type!r}") from None


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise HubSpotError(
            f"HubSpot answered HTTP {response.status_code} with a body that is not JSON", retryable=True
        ) from None
    if not isinstance(body, dict):
        raise HubSpotError(f"HubSpot answered HTTP {response.status_code} with a non-object body")
    return body


def _error_text(error: Mapping[str, Any]) -> str:
    return body_excerpt(str(error.get("message") or "no message"))


def _not_found_ids(error: Mapping[str, Any]) -> list[str]:
    """The ids an ``OBJECT_NOT_FOUND`` error names in its structured ``context.ids``; [] for any other."""
    if str(error.get("category") or "") != NOT_FOUND_CATEGORY:
        return []
    context = error.get("context") or {}
    values = context.get("ids") if isinstance(context, Mapping) else None
    return [str(value) for value in values or [] if value not in (None, "")]


def _error(
    error: Mapping[str, Any], object_type: str, named: Sequence[str], *, status: int | None
) -> HubSpotError:
    """One entry of a batch answer's ``errors[]`` as an exception: :class:`ObjectsNotFound` when HubSpot
    says the records it names do not exist."""
    missing = _not_found_ids(error)
    if missing and set(named) <= set(missing):
        return ObjectsNotFound(object_type, missing, _error_text(error))
    return HubSpotError(f"HubSpot {error.get('category', 'ERROR')}: {_error_text(error)}", status=status)


def _association_failures(
    body: Mapping[str, Any], chunk: Sequence[tuple[str, str]], from_type: str, to_type: str
) -> dict[tuple[str, str], HubSpotError]:
    """The pairs of one associate call HubSpot did not make, each with its reason.

    HubSpot lists the associations it made in ``results`` and the problems in ``errors[]`` (not per
    input). A pair is failed when errors came back and the pair is not among the results; its reason is
    the not-found error naming one of its ids (the missing record, typed by the side it is on), else the
    first other error.
    """
    errors = [error for error in body.get("errors") or [] if isinstance(error, Mapping)]
    if not errors:
        return {}
    made = {
        (str((item.get("from") or {}).get("id")), str((item.get("to") or {}).get("id")))
        for item in body.get("results") or []
        if isinstance(item, Mapping)
    }
    missing: dict[str, str] = {}  # id -> HubSpot's message about it
    for error in errors:
        missing.update(dict.fromkeys(_not_found_ids(error), _error_text(error)))
    others = [error for error in errors if not _not_found_ids(error)]
    general = (
        HubSpotError(f"HubSpot {others[0].get('category', 'ERROR')}: {_error_text(others[0])}")
        if others
        else None
    )
    failed: dict[tuple[str, str], HubSpotError] = {}
    for pair in chunk:
        if pair in made:
            continue
        from_id, to_id = pair
        if to_id in missing:
            failed[pair] = ObjectsNotFound(to_type, [to_id], missing[to_id])
        elif from_id in missing:
            failed[pair] = ObjectsNotFound(from_type, [from_id], missing[from_id])
        else:
            failed[pair] = general or HubSpotError(
                f"HubSpot did not make the {from_type}→{to_type} association and gave no reason for it"
            )
    return failed


class HubSpotAuth:
    """Private-app bearer token from the HubSpot secret (``{"access_token", "portal_id"?, ...}``).

    A private-app token does not expire; after a 401 (``force_refresh``) the secret is read again past
    the process's cache, so a token an operator just rotated (``ledgerlink connect hubspot``) is used on
    the retry instead of after the cache's lifetime; if that one is refused too, the call fails.
    """

    def __init__(self, secrets: SecretStore, secret_name: str) -> None:
        self._secrets = secrets
        self._secret_name = secret_name

    def __repr__(self) -> str:
        return f"HubSpotAuth(secret_name={self._secret_name!r})"

    def __call__(self, *, force_refresh: bool = False) -> Mapping[str, str]:
        if force_refresh:
            self._secrets.invalidate(self._secret_name)
        secret = self._secrets.get_json(self._secret_name)
        token = secret.get("access_token")
        if not token:
            raise HubSpotError(f"secret {self._secret_name!r} has no access_token")
        return {"Authorization": f"Bearer {token}"}

    def portal_id(self) -> str | None:
        value = self._secrets.get_json(self._secret_name).get("portal_id")
        return str(value) if value else None
