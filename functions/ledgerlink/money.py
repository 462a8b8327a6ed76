"""Money as Decimal: parsing QBO numbers, currency exponents, HubSpot number strings, allocation.

QBO sends amounts as JSON numbers. A caller that parsed the body with ``parse_float=Decimal``
hands us Decimals; one that did not hands us floats, which :func:`to_decimal` turns into the
shortest decimal that prints as that float (``Decimal(str(x))``), never the binary expansion.
Nothing in the mapping does arithmetic on floats.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from ledgerlink.mapping.errors import MappingError

# ISO 4217 minor units for the currencies whose exponent is not 2 (every other code has 2).
_NON_DEFAULT_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def to_decimal(value: Any, *, entity: str, field: str) -> Decimal:
    """A QBO number as a finite Decimal; anything else is a MappingError naming the field."""
    if isinstance(value, bool) or value is None:
        raise MappingError(entity, field, f"must be a number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | float | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise MappingError(entity, field, f"must be a number, got {value!r}") from None
    else:
        raise MappingError(entity, field, f"must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise MappingError(entity, field, f"must be a finite number, got {value!r}")
    return result


def optional_decimal(value: Any, *, entity: str, field: str) -> Decimal | None:
    return None if value is None else to_decimal(value, entity=entity, field=field)


def normalise_currency(code: Any, *, entity: str) -> str:
    text = str(code or "").strip().upper()
    if not _CURRENCY_CODE.match(text):
        raise MappingError(entity, "CurrencyRef.value", f"must be an ISO 4217 code, got {code!r}")
    return text


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point in the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    return _NON_DEFAULT_EXPONENTS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def format_amount(amount: Decimal, currency: str, *, entity: str, field: str) -> str:
    """The amount with exactly the currency's exponent ("362.07", "1500" for JPY).

    An amount with more precision than the currency has is refused rather than rounded: QBO
    never produces one, so it means the input is not what we think it is.
    """
    exact = amount.quantize(quantum(currency))
    if exact != amount:
        raise MappingError(
            entity,
            field,
            f"{amount} has more decimals than {currency} allows ({currency_exponent(currency)})",
        )
    return _plain(exact)


def display_amount(amount: Decimal, currency: str) -> str:
    """``USD 1,250.00`` for people (calendar subjects, meeting bodies): the currency's exponent, thousands
    grouped."""
    exact = amount.quantize(quantum(currency))
    return f"{currency} {exact:,}"


def format_number(value: Decimal) -> str:
    """A HubSpot number property value: plain notation, no exponent, no trailing zeros ("1.5", "100")."""
    if value == 0:
        return "0"
    normalised = value.normalize()
    return _plain(normalised)


def _plain(value: Decimal) -> str:
    # abs() drops the sign of a negative zero ("-0.00" → "0.00") and keeps the exponent.
    return format(abs(value) if value.is_zero() else value, "f")


def to_minor(amount: Decimal, currency: str) -> int:
    """Whole minor units (cents); the amount must already be exact at the currency's exponent."""
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of {currency} minor units")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency)).quantize(quantum(currency))


def quantity_step(quantity: Decimal) -> int:
    """The smallest share (in minor units) that a per-unit discount can carry exactly on this quantity.

    HubSpot computes a line item's amount as price * quantity - discount * quantity, with the
    per-unit discount in whole minor units. For quantity a/b (lowest terms) the realised
    discount discount * a/b is whole only when the discount is a multiple of b, so shares come
    in steps of a minor units: quantity 1 → 1, quantity 3 → 3, quantity 2.5 (5/2) → 5.
    """
    fraction = Fraction(abs(quantity))
    if fraction == 0:
        raise ValueError("a zero quantity cannot carry a discount")
    return fraction.numerator


def allocate(
    total: int, weights: Sequence[int], steps: Sequence[int], caps: Sequence[int]
) -> list[int] | None:
    """Split ``total`` minor units over lines in proportion to ``weights`` (largest remainder).

    Each share is a multiple of its line's step and at most its cap. Returns None when no such
    split is found (e.g. the total is not reachable in the lines' steps); the caller then makes
    a line more divisible and tries again. Deterministic: ties go to the earlier line.
    """
    count = len(weights)
    if not (count == len(steps) == len(caps)):
        raise ValueError("weights, steps and caps must have one entry per line")
    if total == 0:
        return [0] * count
    if total < 0 or count == 0 or any(w < 0 for w in weights) or any(s <= 0 for s in steps):
        return None
    weight_sum = sum(weights)
    if weight_sum == 0:
        return None
    capacity = [(cap // step) * step if cap > 0 else 0 for cap, step in zip(caps, steps, strict=True)]
    if sum(capacity) < total:
        return None
    ideals = [Fraction(total * weight, weight_sum) for weight in weights]
    shares = [
        min((int(ideal) // step) * step, cap)
        for ideal, step, cap in zip(ideals, steps, capacity, strict=True)
    ]
    remaining = total - sum(shares)
    while remaining > 0:
        candidates = [
            index
            for index in range(count)
            if steps[index] <= remaining and shares[index] + steps[index] <= capacity[index]
        ]
        if not candidates:
            return None
        # The line furthest below its proportional share takes the next step.
        chosen = max(candidates, key=lambda index: (ideals[index] - shares[index], -index))
        shares[chosen] += steps[chosen]
        remaining -= steps[chosen]
    return shares
