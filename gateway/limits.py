"""The hard-budget check, a before-upstream hook: a call whose budget is spent is answered 429 in the provider's
own error shape — naming the budget, its amount and when it resets — and never reaches the provider. The check
reads only in-process state (gateway.hooks.Limits, kept by billing); the first call of an organization in this
process waits for one read of its budgets. Refusals are counted apart from calls: no call record, no cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from django.db import InterfaceError, OperationalError
from starlette.responses import JSONResponse

from gateway import hooks
from gateway.pipeline import Exchange
from gateway.routes import error_body

log = logging.getLogger(__name__)

BUDGET_STATUS = 429
OUTAGE = (OperationalError, InterfaceError, OSError)


def refusal_message(refusal: hooks.Refusal) -> str:
    resets = refusal.resets_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Observatory budget {refusal.budget_name!r} is spent: ${refusal.spent_usd:.2f} of ${refusal.amount_usd:.2f} "
            f"this {refusal.period} ({refusal.time_zone}). The gateway refuses calls under it until it resets at "
            f"{resets}; ask its owner to raise it, or turn off its hard limit.")


def refusal_response(provider: str, refusal: hooks.Refusal) -> JSONResponse:
    seconds = max(1, int((refusal.resets_at - datetime.now(UTC)).total_seconds()))
    headers = {"retry-after": str(seconds), "x-should-retry": "false",  # the official clients then do not retry
               "x-observatory-budget-resets": refusal.resets_at.astimezone(UTC).isoformat()}
    return JSONResponse(error_body(provider, BUDGET_STATUS, refusal_message(refusal), "budget_exceeded"),
                        status_code=BUDGET_STATUS, headers=headers)


class BudgetGuard:
    """`in_db_thread(function, *args)` runs the one blocking read off the event loop (the gateway's DB threads)."""

    def __init__(self, in_db_thread: Callable[..., Awaitable[object]]) -> None:
        self.in_db_thread = in_db_thread
        self._loading: dict[int, asyncio.Future] = {}  # one read per organization, however many calls wait on it

    async def _load(self, limits: hooks.Limits, organization_id: int) -> None:
        pending = self._loading.get(organization_id)
        if pending is None:
            pending = self._loading[organization_id] = asyncio.ensure_future(
                self.in_db_thread(limits.load, organization_id))
            pending.add_done_callback(lambda _: self._loading.pop(organization_id, None))
        await asyncio.shield(pending)

    async def __call__(self, exchange: Exchange) -> JSONResponse | None:
        limits = hooks.limits()
        if limits is None:
            return None
        key = exchange.api_key
        who = (key.organization_id, exchange.attribution.get("team", ""), exchange.attribution.get("product", ""),
               key.default_team_id, key.default_product_id)
        try:
            refusal = limits.check(*who)
        except hooks.LimitsNotLoaded:
            try:
                await self._load(limits, key.organization_id)
            except OUTAGE as exc:  # no budgets known and none readable: serve the call rather than refuse it
                log.warning("hard budgets of organization %s unreadable: %s", key.organization_id,
                            str(exc).splitlines()[0][:200])
                return None
            except Exception:  # a bug in reading them must not take the gateway down with it
                log.exception("hard budgets of organization %s could not be read", key.organization_id)
                return None
            refusal = limits.check(*who)
        if refusal is None:
            return None
        limits.refused(refusal.budget_id)
        return refusal_response(exchange.route.provider, refusal)
