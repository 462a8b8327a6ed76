"""Association types (HubSpot-defined and portal labels) and the bidirectional association store.

Type ids are per direction. Associating records always adds the unlabeled type (HubSpot: it
"will always [be] returned ... with a label value of null"; a primary or custom label is listed
alongside it). HubSpot-defined ids used here come from HubSpot's association type table: contact->company 279 (unlabeled) and 1 (primary), company->contact 280 and 2, deal->contact
3, contact->deal 4, deal->company 341 (unlabeled) and 5 (primary), company->deal 342 and 6,
deal->line_item 19, line_item->deal 20. Confirmed: 279 (HubSpot docs), 1-6, 19, 20 (a published
table); 280, 341, 342 are widely used but were not re-checked against a primary source. Custom labels get
portal-specific ids (from 101 up here), one per direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ledgerlink_local.sandboxes.hubspot.errors import validation_error

HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
USER_DEFINED = "USER_DEFINED"
CATEGORIES = ("HUBSPOT_DEFINED", "INTEGRATOR_DEFINED", "USER_DEFINED", "WORK")


@dataclass(frozen=True)
class AssociationType:
    from_type: str  # plural object type name
    to_type: str
    type_id: int
    category: str
    label: str | None
    name: str  # the v3 "type" string, e.g. deal_to_company_unlabeled
    inverse_id: int

    def spec(self) -> dict[str, Any]:
        return {"associationCategory": self.category, "associationTypeId": self.type_id}

    def spec_with_label(self) -> dict[str, Any]:
        return {"category": self.category, "typeId": self.type_id, "label": self.label}


_BUILT_IN: tuple[tuple[str, str, int, str | None, str, int], ...] = (
    ("contacts", "companies", 279, None, "contact_to_company_unlabeled", 280),
    ("companies", "contacts", 280, None, "company_to_contact_unlabeled", 279),
    ("contacts", "companies", 1, "Primary", "contact_to_company", 2),
    ("companies", "contacts", 2, "Primary", "company_to_contact", 1),
    ("deals", "contacts", 3, None, "deal_to_contact", 4),
    ("contacts", "deals", 4, None, "contact_to_deal", 3),
    ("deals", "companies", 341, None, "deal_to_company_unlabeled", 342),
    ("companies", "deals", 342, None, "company_to_deal_unlabeled", 341),
    ("deals", "companies", 5, "Primary", "deal_to_company", 6),
    ("companies", "deals", 6, "Primary", "company_to_deal", 5),
    ("deals", "line_items", 19, None, "deal_to_line_item", 20),
    ("line_items", "deals", 20, None, "line_item_to_deal", 19),
)
# The unlabeled type the "default" endpoints create, per direction.
DEFAULT_TYPE_IDS: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
    ("deals", "line_items"): 19,
    ("line_items", "deals"): 20,
}
# A record has at most one primary company: adding a new primary replaces the old one.
SINGLE_PRIMARY_TYPE_IDS = frozenset({1, 5})
FIRST_LABEL_TYPE_ID = 101


class AssociationTypes:
    """The association types the portal knows, HubSpot-defined and custom labels."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, int], AssociationType] = {}
        for from_type, to_type, type_id, label, name, inverse in _BUILT_IN:
            self._add(AssociationType(from_type, to_type, type_id, HUBSPOT_DEFINED, label, name, inverse))
        self._next_label_id = FIRST_LABEL_TYPE_ID

    def _add(self, association_type: AssociationType) -> None:
        self._types[(association_type.category, association_type.type_id)] = association_type

    def find(self, category: str, type_id: int) -> AssociationType | None:
        return self._types.get((category, type_id))

    def between(self, from_type: str, to_type: str) -> list[AssociationType]:
        found = [t for t in self._types.values() if t.from_type == from_type and t.to_type == to_type]
        return sorted(found, key=lambda t: (t.category != HUBSPOT_DEFINED, t.type_id))

    def default(self, from_type: str, to_type: str) -> AssociationType:
        type_id = DEFAULT_TYPE_IDS.get((from_type, to_type))
        if type_id is None:
            raise validation_error(f"There is no default association from {from_type} to {to_type}.")
        found = self.find(HUBSPOT_DEFINED, type_id)
        assert found is not None
        return found

    def require(self, from_type: str, to_type: str, category: str, type_id: int) -> AssociationType:
        found = self.find(category, type_id)
        if found is None or found.from_type != from_type or found.to_type != to_type:
            raise validation_error(
                f"{category} {type_id} is not a valid association type between {from_type} and {to_type}.",
                context={"associationTypeId": [str(type_id)]},
            )
        return found

    def create_label(
        self, from_type: str, to_type: str, label: str, name: str, inverse_label: str | None
    ) -> list[AssociationType]:
        if not label.strip() or not name.strip():
            raise validation_error("label and name are required")
        if (from_type, to_type) not in DEFAULT_TYPE_IDS:
            raise validation_error(f"Objects of type {from_type} cannot be associated with {to_type}.")
        for existing in self.between(from_type, to_type):
            if existing.category == USER_DEFINED and existing.label == label:
                raise validation_error(f"An association label named {label} already exists.")
        forward_id, backward_id = self._next_label_id, self._next_label_id + 1
        self._next_label_id += 2
        forward = AssociationType(from_type, to_type, forward_id, USER_DEFINED, label, name, backward_id)
        backward = AssociationType(
            to_type,
            from_type,
            backward_id,
            USER_DEFINED,
            inverse_label or label,
            f"{name}_inverse",
            forward_id,
        )
        self._add(forward)
        self._add(backward)
        return [forward, backward] if inverse_label else [forward]

    def update_label(
        self, from_type: str, to_type: str, type_id: int, label: str, inverse_label: str | None
    ) -> None:
        current = self.require(from_type, to_type, USER_DEFINED, type_id)
        self._add(replace(current, label=label))
        inverse = self.find(USER_DEFINED, current.inverse_id)
        if inverse is not None and inverse_label:
            self._add(replace(inverse, label=inverse_label))

    def delete_label(self, from_type: str, to_type: str, type_id: int) -> AssociationType:
        current = self.require(from_type, to_type, USER_DEFINED, type_id)
        self._types.pop((USER_DEFINED, current.type_id), None)
        self._types.pop((USER_DEFINED, current.inverse_id), None)
        return current


Key = tuple[str, str, str, str]  # from_type, from_id, to_type, to_id


class AssociationStore:
    """Associations stored in both directions, each with the inverse type."""

    def __init__(self, types: AssociationTypes) -> None:
        self.types = types
        self._links: dict[Key, set[tuple[str, int]]] = {}

    def add(self, from_type: str, from_id: str, to_type: str, to_id: str, kind: AssociationType) -> None:
        default_id = DEFAULT_TYPE_IDS.get((from_type, to_type))
        if kind.label is not None and default_id is not None:
            # HubSpot: the unlabeled type is added whenever records are associated; a primary or
            # custom label is listed alongside it.
            unlabeled = self.types.find(HUBSPOT_DEFINED, default_id)
            if unlabeled is not None:
                self.add(from_type, from_id, to_type, to_id, unlabeled)
        if kind.type_id in SINGLE_PRIMARY_TYPE_IDS:
            for other_id, kinds in self.targets(from_type, from_id, to_type):
                if other_id != to_id and any(k.type_id == kind.type_id for k in kinds):
                    self.remove_types(from_type, from_id, to_type, other_id, [kind])
        self._links.setdefault((from_type, from_id, to_type, to_id), set()).add((kind.category, kind.type_id))
        inverse = self.types.find(kind.category, kind.inverse_id)
        if inverse is not None:
            self._links.setdefault((to_type, to_id, from_type, from_id), set()).add(
                (inverse.category, inverse.type_id)
            )

    def remove_types(
        self, from_type: str, from_id: str, to_type: str, to_id: str, kinds: Iterable[AssociationType]
    ) -> None:
        for kind in kinds:
            self._discard((from_type, from_id, to_type, to_id), (kind.category, kind.type_id))
            self._discard((to_type, to_id, from_type, from_id), (kind.category, kind.inverse_id))

    def _discard(self, key: Key, member: tuple[str, int]) -> None:
        members = self._links.get(key)
        if members is None:
            return
        members.discard(member)
        if not members:
            del self._links[key]

    def remove_pair(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self._links.pop((from_type, from_id, to_type, to_id), None)
        self._links.pop((to_type, to_id, from_type, from_id), None)

    def purge_types(self, category: str, type_ids: Iterable[int]) -> None:
        """Forget every association of these types (a deleted label)."""
        unwanted = {(category, type_id) for type_id in type_ids}
        for key in list(self._links):
            remaining = self._links[key] - unwanted
            if remaining:
                self._links[key] = remaining
            else:
                del self._links[key]

    def remove_object(self, object_type: str, object_id: str) -> None:
        for key in [k for k in self._links if (k[0], k[1]) == (object_type, object_id)]:
            self.remove_pair(*key)

    def kinds(self, from_type: str, from_id: str, to_type: str, to_id: str) -> list[AssociationType]:
        found = []
        for category, type_id in self._links.get((from_type, from_id, to_type, to_id), set()):
            kind = self.types.find(category, type_id)
            if kind is not None:
                found.append(kind)
        return sorted(found, key=lambda t: (t.category != HUBSPOT_DEFINED, t.type_id))

    def targets(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, list[AssociationType]]]:
        ids = [k[3] for k in self._links if k[0] == from_type and k[1] == from_id and k[2] == to_type]
        ids.sort(key=lambda value: (len(value), value))
        return [(to_id, self.kinds(from_type, from_id, to_type, to_id)) for to_id in ids]

    def all(self) -> list[dict[str, Any]]:
        return [
            {
                "fromObjectType": k[0],
                "fromObjectId": k[1],
                "toObjectType": k[2],
                "toObjectId": k[3],
                "types": sorted([{"category": c, "typeId": t} for c, t in v], key=lambda x: x["typeId"]),
            }
            for k, v in sorted(self._links.items())
        ]
