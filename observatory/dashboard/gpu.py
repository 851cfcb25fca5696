"""GPU pool reads: each pool's cost over a range, split by team, and its idle share.

With the whole organization every pool is shown in full. A team sees its own share of any pool it used, and
the full cost and idle time of the pools it owns (the owner pays for the idle hours); other teams' usage of
an owned pool is one "other teams" figure, never named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from billing.models import GpuCostHour, GpuPool
from observatory.access import Scope
from observatory.dashboard.filters import Period
from observatory.dashboard.spend import percent

ZERO = Decimal(0)


@dataclass
class PoolReport:
    pool: GpuPool
    team_names: dict[int, str]
    by_team: dict[int | None, Decimal] = field(default_factory=dict)
    other_teams_usd: Decimal = ZERO
    idle_usd: Decimal | None = None
    gpu_hours: float = 0.0

    @property
    def team_costs(self) -> list[tuple[str, Decimal]]:
        """(team name, cost) of the visible teams' use, largest first; calls with no team are "Unattributed"."""
        named = [(self.team_names.get(team_id, "Unattributed") if team_id else "Unattributed", cost)
                 for team_id, cost in self.by_team.items()]
        return sorted(named, key=lambda pair: -pair[1])

    @property
    def busy_usd(self) -> Decimal:
        return sum(self.by_team.values(), ZERO) + self.other_teams_usd

    @property
    def total_usd(self) -> Decimal:
        return self.busy_usd + (self.idle_usd or ZERO)

    @property
    def idle_share(self) -> Decimal | None:
        return percent(self.idle_usd, self.total_usd) if self.idle_usd is not None else None


def pool_reports(scope: Scope, period: Period, team_names: dict[int, str]) -> list[PoolReport]:
    """Pools with their cost in the range as the scope may see it, most expensive first."""
    pools = {pool.id: pool for pool in GpuPool.objects.filter(organization_id=scope.organization_id)
             .select_related("owner_team").order_by("name")}
    rows = (GpuCostHour.objects.filter(organization_id=scope.organization_id, hour__gte=period.start, hour__lt=period.end)
            .values("pool_id", "team_id", "is_idle").annotate(cost=Sum("cost_usd"), seconds=Sum("gpu_seconds")).order_by())
    team_ids = scope.team_ids

    def owns(pool: GpuPool) -> bool:
        return team_ids is None or pool.owner_team_id in team_ids

    reports = {pool_id: PoolReport(pool=pool, team_names=team_names, idle_usd=ZERO)
               for pool_id, pool in pools.items() if owns(pool)}
    for row in rows:
        pool = pools[row["pool_id"]]
        mine = team_ids is None or row["team_id"] in team_ids
        if not (mine or owns(pool)):
            continue
        report = reports.setdefault(pool.id, PoolReport(pool=pool, team_names=team_names))
        report.gpu_hours += (row["seconds"] or 0) / 3600
        if row["is_idle"]:
            if report.idle_usd is not None:
                report.idle_usd += row["cost"]
        elif mine:
            report.by_team[row["team_id"]] = report.by_team.get(row["team_id"], ZERO) + row["cost"]
        else:
            report.other_teams_usd += row["cost"]
    return sorted(reports.values(), key=lambda r: (-r.total_usd, r.pool.name))
