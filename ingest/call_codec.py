"""Normalized calls as JSON and back, for calls that reach ingest already normalized (the gateway) and must wait in
the spool while the database is away. Plain data, no Django."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from decimal import Decimal

import orjson

from ingest.records import CallFields

_DECIMALS = frozenset({"cost_avoided_usd", "provided_cost_usd"})
_NAMES = frozenset(field.name for field in fields(CallFields))


def calls_to_json(calls: list[CallFields]) -> bytes:
    return orjson.dumps([asdict(call) for call in calls], default=str)


def calls_from_json(body: bytes) -> list[CallFields]:
    """The calls `calls_to_json` wrote; raises ValueError on anything else."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("expected a list of calls")
    calls = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("a call is not an object")
        data = {name: value for name, value in item.items() if name in _NAMES}
        data["start_time"] = datetime.fromisoformat(data["start_time"])
        for name in _DECIMALS:
            if data.get(name) is not None:
                data[name] = Decimal(data[name])
        calls.append(CallFields(**data))
    return calls
