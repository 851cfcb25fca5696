"""What other apps plug into the gateway when they start, so that the gateway never imports them (data flows one
way: the gateway's calls reach billing as call records, through ingest).

billing registers its hard-budget book in `BillingConfig.ready()`; left unset, the gateway refuses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class LimitsNotLoaded(Exception):
    """This process has not read the organization's hard budgets yet: `load` them (blocking), then check again."""


@dataclass(frozen=True)
class Refusal:
    """A hard budget that is spent, as the refusal names it."""

    budget_id: int
    budget_name: str
    amount_usd: Decimal
    spent_usd: Decimal
    period: str  # day / week / month
    time_zone: str
    resets_at: datetime  # UTC


class Limits(Protocol):
    def check(self, organization_id: int, team: str, product: str, key_team_id: int | None,
              key_product_id: int | None) -> Refusal | None:
        """The spent hard budget this call falls under, if any; in-process only (microseconds). Raises
        LimitsNotLoaded when the organization's budgets are not known here yet."""

    def load(self, organization_id: int) -> None:
        """Read the organization's hard budgets and their counters (database; run off the event loop)."""

    def refused(self, budget_id: int) -> None:
        """Count one refused request (kept apart from calls; written in the background)."""


_limits: Limits | None = None


def set_limits(limits: Limits | None) -> None:
    global _limits
    _limits = limits


def limits() -> Limits | None:
    return _limits
