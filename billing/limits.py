"""Hard budgets: the gateway refuses a call once its budget's period spend reaches the amount.

The check must cost microseconds, so it reads no database: each gateway process keeps, per organization, its hard
budgets and a counter of each one's spend this period, refreshed in a background thread every READ_SECONDS. The
counters are shared by every process (Redis when REDIS_URL, or a Redis Celery broker, is configured; else the
table billing_budgetcounter), and kept current as calls are stored: ingest tells `record_spend` what each batch cost
(gateway calls and SDK/OTel calls alike), which adds it to the counters of the budgets the calls fall under. Each
process also adds its own calls to its local copy at once. Every minute `reconcile` sets each counter to the spend
the rollups and raw calls give (billing.alerts.budgets.spend_between), so a counter is never off for longer:
duplicates an exporter re-sent, re-priced calls, or increments lost to the few milliseconds of a reconciliation.

Worst-case overshoot. A call is admitted against the spend known when it starts, and its cost is added when it is
stored, which is after its answer ends plus the recorder's 50 ms linger. So past the amount, a budget can still
admit (a) every call in flight when the limit is crossed and (b) every call that starts before the counter shows it
— within READ_SECONDS + the linger (+ the store) for other processes, the linger for the process itself:

    overshoot ≤ (calls in flight + calls started in that window) × the largest cost of one call

e.g. 50 concurrent chat calls of at most $0.02 each: at most about $1 over, whatever the budget. A gateway that
cannot reach its database or Redis keeps the last counters it read (it errs towards serving calls).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone
from django.utils.text import slugify

from billing.alerts.budgets import SpendScope, period_bounds, spend_between
from billing.models import Budget, BudgetCounter, BudgetRefusal
from gateway.hooks import LimitsNotLoaded, Refusal
from observatory.models import Product, Team

log = logging.getLogger(__name__)

READ_SECONDS = 0.2  # how stale a process's copy of the counters may be
BUDGETS_SECONDS = 5.0  # how soon a new, changed or removed hard budget reaches every process
UNIT = Decimal("1e-10")  # Redis counts integers of this many dollars (cost_usd has 10 decimal places)
ZERO = Decimal(0)
CounterKey = tuple[int, datetime]  # budget id, period start (UTC)


# Where the counters live ----------------------------------------------------------------------------------------

class PostgresCounters:
    """One row per (budget, period) in billing_budgetcounter, added to in one atomic statement."""

    def add(self, amounts: dict[CounterKey, Decimal]) -> None:
        now = timezone.now()
        rows = sorted(amounts.items())  # one order for every writer: stores in transactions never wait crosswise
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO billing_budgetcounter (budget_id, period_start, spent_usd, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (budget_id, period_start) "
                "DO UPDATE SET spent_usd = billing_budgetcounter.spent_usd + EXCLUDED.spent_usd, updated_at = %s",
                [(budget_id, start, amount, now, now) for (budget_id, start), amount in rows])

    def read(self, keys: list[CounterKey]) -> dict[CounterKey, Decimal]:
        wanted = set(keys)
        rows = BudgetCounter.objects.filter(budget_id__in={budget_id for budget_id, _ in keys}, reconciled_at__isnull=False)
        return {(b, s): v for b, s, v in rows.values_list("budget_id", "period_start", "spent_usd") if (b, s) in wanted}

    def set(self, key: CounterKey, spent: Decimal) -> None:
        now = timezone.now()
        BudgetCounter.objects.update_or_create(budget_id=key[0], period_start=key[1],
                                               defaults={"spent_usd": spent, "reconciled_at": now, "updated_at": now})


class RedisCounters:
    """`observatory:budget-spend:<budget>:<period start>` = spend in units of 1e-10 USD (INCRBY is atomic); a counter
    expires 40 days after it was last reconciled, long after its period ended."""

    TTL = 40 * 24 * 3600

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    @staticmethod
    def _name(key: CounterKey) -> str:
        return f"observatory:budget-spend:{key[0]}:{int(key[1].timestamp())}"

    def add(self, amounts: dict[CounterKey, Decimal]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, amount in amounts.items():
            pipe.incrby(self._name(key), int((amount / UNIT).to_integral_value()))
        pipe.execute()

    def read(self, keys: list[CounterKey]) -> dict[CounterKey, Decimal]:
        # a counter is trusted once reconciled: before that, an INCRBY alone would read as the whole period's spend
        values = self.client.mget([self._name(key) + ":r" for key in keys] + [self._name(key) for key in keys])
        marks, counts = values[:len(keys)], values[len(keys):]
        return {key: Decimal(int(count or 0)) * UNIT for key, mark, count in zip(keys, marks, counts, strict=True) if mark}

    def set(self, key: CounterKey, spent: Decimal) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._name(key), int((spent / UNIT).to_integral_value()), ex=self.TTL)
        pipe.set(self._name(key) + ":r", "1", ex=self.TTL)
        pipe.execute()


def redis_url() -> str:
    """REDIS_URL, else the Celery broker's when it is Redis; "" for PostgreSQL."""
    url = getattr(settings, "REDIS_URL", "") or ""
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if not url and broker.split("://", 1)[0] in ("redis", "rediss"):
        url = broker
    return url


def make_counters() -> PostgresCounters | RedisCounters:
    url = redis_url()
    return RedisCounters(url) if url else PostgresCounters()


# The in-process book --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HardBudget:
    id: int
    name: str
    team_id: int | None
    product_id: int | None
    period: str
    time_zone: str
    amount_usd: Decimal

    def covers(self, team_id: int | None, product_id: int | None) -> bool:
        return (self.team_id is None or self.team_id == team_id) and \
            (self.product_id is None or self.product_id == product_id)


@dataclass(frozen=True)
class OrgLimits:
    loaded_at: float
    budgets: tuple[HardBudget, ...]
    teams: dict[str, int]  # slug → id (x-observatory-team names a team as ingest does: by its slug)
    products: dict[str, int]


class LimitBook:
    """This process's copy of the hard budgets and their counters (gateway.hooks.Limits)."""

    def __init__(self, counters=None) -> None:
        self._counters = counters
        self._lock = threading.Lock()
        self.orgs: dict[int, OrgLimits] = {}
        self.spent: dict[CounterKey, Decimal] = {}
        self._periods: dict[int, tuple[datetime, datetime]] = {}  # budget id → its current period
        self._slugs: dict[str, str] = {}
        self._refused: Counter[tuple[int, datetime]] = Counter()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()

    @property
    def counters(self):
        if self._counters is None:
            self._counters = make_counters()
        return self._counters

    # the request path: dictionaries only
    def check(self, organization_id: int, team: str, product: str, key_team_id: int | None,
              key_product_id: int | None) -> Refusal | None:
        org = self.orgs.get(organization_id)
        if org is None:
            raise LimitsNotLoaded(organization_id)
        if not org.budgets:
            return None
        team_id = org.teams.get(self._slug(team)) if team else key_team_id
        product_id = org.products.get(self._slug(product)) if product else key_product_id
        for budget in org.budgets:
            if not budget.covers(team_id, product_id):
                continue
            start, end = self.period(budget)
            spent = self.spent.get((budget.id, start), ZERO)
            if spent >= budget.amount_usd:
                return Refusal(budget.id, budget.name, budget.amount_usd, spent, budget.period, budget.time_zone, end)
        return None

    def refused(self, budget_id: int) -> None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            self._refused[(budget_id, hour)] += 1
        self._wake.set()

    def _slug(self, name: str) -> str:
        slug = self._slugs.get(name)
        if slug is None:
            if len(self._slugs) > 10_000:
                self._slugs.clear()
            slug = self._slugs[name] = slugify(name)[:100]
        return slug

    def period(self, budget: HardBudget) -> tuple[datetime, datetime]:
        bounds = self._periods.get(budget.id)
        now = datetime.now(UTC)
        if bounds is None or not bounds[0] <= now < bounds[1]:
            bounds = self._periods[budget.id] = period_bounds(budget.period, budget.time_zone, now)
        return bounds

    # the background path: database and Redis
    def read_org(self, organization_id: int) -> None:
        """Read the organization's hard budgets and their counters, reconciling a counter seen for the first time."""
        budgets = tuple(HardBudget(b.pk, b.name, b.team_id, b.product_id, b.period, b.time_zone, b.amount_usd)
                        for b in Budget.objects.filter(organization_id=organization_id, hard_limit=True, is_active=True))
        teams = dict(Team.objects.filter(organization_id=organization_id).values_list("slug", "pk")) if budgets else {}
        products = dict(Product.objects.filter(organization_id=organization_id).values_list("slug", "pk")) \
            if budgets else {}
        self._read_counters(organization_id, budgets)
        self.orgs = {**self.orgs, organization_id: OrgLimits(time.monotonic(), budgets, teams, products)}

    def load(self, organization_id: int) -> None:
        """`read_org`, then keep the counters fresh in a background thread (what a gateway process does)."""
        self.read_org(organization_id)
        self._start()

    def _read_counters(self, organization_id: int, budgets: tuple[HardBudget, ...]) -> None:
        keys = [(budget.id, self.period(budget)[0]) for budget in budgets]
        if not keys:
            return
        found = self.counters.read(keys)
        for budget, key in zip(budgets, keys, strict=True):
            if key not in found:  # a new period, or a budget just made a limit: start from what was spent
                found[key] = reconcile_budget(budget.id, organization_id, budget.team_id, budget.product_id,
                                              key[1], self.counters)
        self.spent = {**self.spent, **found}

    def record_spend(self, organization_id: int, spent: list[tuple[int | None, int | None, datetime, Decimal]]) -> None:
        """ingest's spend listener: add what stored calls cost to the counters of the hard budgets they fall under."""
        org = self.orgs.get(organization_id)
        if org is None or time.monotonic() - org.loaded_at > BUDGETS_SECONDS:
            self.read_org(organization_id)
            org = self.orgs[organization_id]
        amounts: dict[CounterKey, Decimal] = {}
        for budget in org.budgets:
            start, end = self.period(budget)
            for team_id, product_id, started, cost in spent:
                if start <= started < end and budget.covers(team_id, product_id):
                    amounts[(budget.id, start)] = amounts.get((budget.id, start), ZERO) + cost
        if not amounts:
            return
        self.counters.add(amounts)
        with self._lock:  # this process sees its own spend at once, before the next read
            local = dict(self.spent)
            for key, amount in amounts.items():
                local[key] = local.get(key, ZERO) + amount
            self.spent = local

    def refresh(self) -> None:
        """Re-read every known organization's counters (and, every BUDGETS_SECONDS, its budgets); write refusals."""
        for organization_id, org in list(self.orgs.items()):
            if time.monotonic() - org.loaded_at > BUDGETS_SECONDS:
                self.read_org(organization_id)
            elif org.budgets:
                self._read_counters(organization_id, org.budgets)
        with self._lock:
            refused, self._refused = self._refused, Counter()
        if refused:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO billing_budgetrefusal (budget_id, hour, refused) VALUES (%s, %s, %s) "
                    "ON CONFLICT (budget_id, hour) DO UPDATE SET refused = billing_budgetrefusal.refused + EXCLUDED.refused",
                    [(budget_id, hour, count) for (budget_id, hour), count in refused.items()])

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stopping,), name="budget-limits",
                                                daemon=True)
                self._thread.start()

    def _run(self, stopping: threading.Event) -> None:
        try:
            while not stopping.is_set():
                self._wake.wait(READ_SECONDS)
                self._wake.clear()
                if stopping.is_set():
                    return
                try:
                    close_old_connections()
                    self.refresh()
                except Exception as exc:  # the database or Redis away: keep the last counters, try again
                    log.warning("hard budgets: counters not refreshed: %s", str(exc).splitlines()[0][:200])
                    connections.close_all()
        finally:
            connections.close_all()

    def stop(self, timeout: float = 5.0) -> None:
        """End the background thread (it closes its database connection)."""
        thread = self._thread
        self._stopping.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def forget(self) -> None:
        """Stop the background thread and drop what this process knows (tests; a later check loads afresh)."""
        self.stop()
        with self._lock:
            self.orgs, self.spent, self._refused = {}, {}, Counter()
            self._periods.clear()


def reconcile_budget(budget_id: int, organization_id: int, team_id: int | None, product_id: int | None,
                     period_start: datetime, counters=None) -> Decimal:
    """Set a budget's counter to the spend the rollups and raw calls give from its period's start to now."""
    spent = spend_between(SpendScope(organization_id, team_id, product_id), period_start, timezone.now())
    (counters or book.counters).set((budget_id, period_start), spent)
    return spent


def reconcile(now: datetime | None = None) -> int:
    """Reconcile every active hard budget's counter for its current period (the minute task); returns how many."""
    now = now or timezone.now()
    done = 0
    for budget in Budget.objects.filter(hard_limit=True, is_active=True):
        start, _ = period_bounds(budget.period, budget.time_zone, now)
        reconcile_budget(budget.pk, budget.organization_id, budget.team_id, budget.product_id, start)
        done += 1
    return done


def refused_this_period(budget: Budget, now: datetime | None = None) -> int:
    """Requests the gateway refused under this budget since its period began (they are not calls: $0, no row)."""
    start, _ = period_bounds(budget.period, budget.time_zone, now or timezone.now())
    hour = start.replace(minute=0, second=0, microsecond=0)
    return sum(BudgetRefusal.objects.filter(budget=budget, hour__gte=hour).values_list("refused", flat=True))


book = LimitBook()
