"""Chart specifications for static/observatory/dashboard.js: plain data, rendered by the vendored Chart.js.

Money goes out as decimal strings (never floats); the browser turns them into numbers only to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

COLORS = ("#3157d5", "#17a589", "#e67e22", "#8e44ad", "#c0392b", "#7f8c8d")


def slot_label(slot: datetime | date) -> str:
    if isinstance(slot, datetime):
        return f"{slot:%H:%M}"
    return f"{slot:%b %d}"


def chart(kind: str, slots: Sequence[datetime | date], series: dict[str, Sequence[Decimal | float | int | None]],
          unit: str, stacked: bool = False, scale: str = "linear", axis: str = "") -> dict:
    """`series` maps a legend label to one value per slot; unit is usd, ms, pct or count (axis and tooltips).

    `scale="log"` draws the value axis in powers of ten, for series of different magnitudes: a p50 of 600 ms
    next to a p99 of 20,000 ms stays readable instead of lying flat on the floor (values of 0 are not drawn).
    `axis` titles the value axis.
    """
    if scale not in ("linear", "log"):
        raise ValueError(f"unknown scale {scale!r}")
    return {
        "type": kind,
        "unit": unit,
        "stacked": stacked,
        "scale": scale,
        "axis": axis,
        "labels": [slot_label(slot) for slot in slots],
        "datasets": [
            {"label": label, "color": COLORS[i % len(COLORS)],
             "data": [None if value is None else str(value) for value in values]}
            for i, (label, values) in enumerate(series.items())
        ],
    }
