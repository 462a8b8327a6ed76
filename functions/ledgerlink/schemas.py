"""Loads and applies the JSON schemas in the repository's schemas/ folder.

The same files are the contract between the Lambdas (schemas/events/) and the
description of every inbound webhook shape (schemas/webhooks/). The Lambda asset
carries a copy of schemas/ beside the package, so the lookup tries both places.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

_PACKAGE_DIR = Path(__file__).resolve().parent


def schemas_root() -> Path:
    """schemas/ in the checkout (functions/ledgerlink/../../schemas) or in the Lambda asset (ledgerlink/../schemas)."""
    for candidate in (_PACKAGE_DIR.parent / "schemas", _PACKAGE_DIR.parent.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("schemas/ folder not found beside the ledgerlink package")


@lru_cache(maxsize=1)
def _registry() -> Registry:
    """Every schema, addressable by its $id, so that schemas can $ref each other."""
    registry: Registry = Registry()
    for path in sorted(schemas_root().rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(document["$id"], Resource.from_contents(document))
    return registry


@cache
def validator(relative_path: str) -> Draft202012Validator:
    """A compiled validator for schemas/<relative_path>, e.g. "events/qbo.entity.changed.v1.json"."""
    document = json.loads((schemas_root() / relative_path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, registry=_registry())


def first_error(relative_path: str, instance: Any) -> ValidationError | None:
    """The first validation error found (in document order, roughly), or None when the instance is valid.

    Validation stops there: collecting every error of a large invalid document to pick one (200,000
    empty objects in a 600 kB webhook body) took longer than the function's timeout.
    """
    return next(iter(validator(relative_path).iter_errors(instance)), None)


def describe(error: ValidationError) -> str:
    """A message naming the offending field by its JSON path, e.g. "$[0].intuitentityid: ... is required"."""
    location = "$" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
    )
    return f"{location}: {error.message}"
