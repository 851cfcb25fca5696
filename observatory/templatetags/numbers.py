"""`grouped`: Django's `floatformat:"<places>g"` (rounded half up, thousands grouped) at a fraction of its cost. The
dashboard's tables format thousands of cells a page, and floatformat's localization machinery was most of their
rendering time. Output is what floatformat gives under the project's en-us locale (tests hold it to that)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()
_STEPS = {places: Decimal(1).scaleb(-places) for places in range(0, 11)}


def _decimal(value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    try:
        return Decimal(repr(value) if isinstance(value, float) else str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


@register.filter
def grouped(value, places: int = 0) -> str:
    number = _decimal(value) if value is not None else None
    if number is None:
        return ""
    if not number.is_finite():
        return str(value)  # nan, inf: as floatformat writes them
    places = int(places)
    rounded = number.quantize(_STEPS.get(places) or Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if not rounded:
        rounded = abs(rounded)  # no "-0"
    return f"{rounded:,.{places}f}"
