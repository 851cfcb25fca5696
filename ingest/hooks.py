"""What other apps plug into ingest when they start, so that ingest never imports them (data flows one way).

billing registers both in `BillingConfig.ready()`: the function that prices a call as it is stored, and the reader
of the attribution rules users edit. Left unset, calls are stored unpriced (cost status "pending", which a
`reprice` over their time range prices), and only a call's own attributes and its key's defaults attribute it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ingest.records import CallFields, IngestCost, Rule

CallPricer = Callable[[int, CallFields], IngestCost]  # (organization id, call) → its cost at its start time
RuleReader = Callable[[], Iterable[Rule]]  # every organization's rules, each organization's in the order they are tried

_call_pricer: CallPricer | None = None
_rule_reader: RuleReader | None = None


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
