"""What other apps plug into ingest when they start, so that ingest never imports them (data flows one way).

billing registers them in `BillingConfig.ready()`: the function that prices a call as it is stored, the reader
of the attribution rules users edit, and the listener told what stored calls cost (hard-budget counters).
Left unset, calls are stored unpriced (cost status "pending", which a
`reprice` over their time range prices), and only a call's own attributes and its key's defaults attribute it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from ingest.records import CallFields, IngestCost, Rule

CallPricer = Callable[[int, CallFields], IngestCost]  # (organization id, call) → its cost at its start time
RuleReader = Callable[[], Iterable[Rule]]  # every organization's rules, each organization's in the order they are tried
StoredSpend = tuple[int | None, int | None, datetime, Decimal]  # team id, product id, start time, cost of a stored call
SpendListener = Callable[[int, list[StoredSpend]], None]  # (organization id, the priced calls just stored)

_call_pricer: CallPricer | None = None
_rule_reader: RuleReader | None = None
_spend_listener: SpendListener | None = None


def set_call_pricer(pricer: CallPricer | None) -> None:
    global _call_pricer
    _call_pricer = pricer


def call_pricer() -> CallPricer | None:
    return _call_pricer


def set_rule_reader(reader: RuleReader | None) -> None:
    global _rule_reader
    _rule_reader = reader


def rule_reader() -> RuleReader | None:
    return _rule_reader


def set_spend_listener(listener: SpendListener | None) -> None:
    """Told the cost of every batch of calls once it is stored (billing keeps hard-budget counters current)."""
    global _spend_listener
    _spend_listener = listener


def spend_listener() -> SpendListener | None:
    return _spend_listener
