"""Hourly and daily rollups of call records, with latency and TTFT histograms in log buckets.

Buckets grow by GAMMA = 1.05, so a percentile read from a bucket's geometric middle is within 2.5% of
the exact value, over any range and grouping, without touching raw rows. The job is incremental: it
recomputes every hour that received (or had changed) calls since its watermark on `ingested_at`, so
late calls are included and rerunning — even after a crash halfway — gives identical totals. Each organization
has its own watermark; a failure (of an organization, or of one hour) is recorded and the rest goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import InterfaceError, OperationalError, connection, transaction

# SQL below is assembled from module constants only, never from input.
# ruff: noqa: S608
from django.utils import timezone

from billing.day_rollups import rollup_days, week_of
from billing.models import HourlySlowCall, RollupState
from ingest.dedup import merge_late_duplicates

GAMMA = 1.05
LOG_GAMMA = math.log(GAMMA)
MIN_MS = 0.01
SLOWEST_PER_GROUP = HourlySlowCall.SLOWEST_PER_GROUP
WATERMARK_OVERLAP = timedelta(minutes=2)  # re-read a little: ingest transactions that committed late
LOCK_KEY = 74_211_001  # pg advisory lock: one rollup job at a time
NEVER_ROLLED = datetime(2000, 1, 1, tzinfo=UTC)

log = logging.getLogger(__name__)

DIMENSIONS = "team_id, product_id, provider, model, environment, feature"
SUMS = """count(*) AS calls,
    count(*) FILTER (WHERE status = 'error') AS errors,
    count(*) FILTER (WHERE streaming) AS streaming_calls,
    count(*) FILTER (WHERE cost_status = 'unknown_model') AS unpriced_calls,
    count(*) FILTER (WHERE cost_status = 'implausible') AS implausible_calls,
    count(*) FILTER (WHERE cost_status = 'usage_missing') AS usage_missing_calls,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(cached_input_tokens), 0) AS cached_input_tokens,
    coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    coalesce(sum(cost_usd) FILTER (WHERE status = 'error'), 0) AS error_cost_usd,
    coalesce(sum(cache_saving), 0) AS cache_read_savings_usd,
    count(*) FILTER (WHERE app_cache_hit) AS app_cache_hits,
    coalesce(sum(cost_avoided_usd), 0) AS cost_avoided_usd,
    coalesce(sum(duration_ms), 0) AS latency_sum_ms,
    count(ttft_ms) AS ttft_calls,
    coalesce(sum(ttft_ms), 0) AS ttft_sum_ms"""
SUM_COLUMNS = (
    "calls, errors, streaming_calls, unpriced_calls, implausible_calls, usage_missing_calls, input_tokens, cached_input_tokens, "
    "cache_write_tokens, output_tokens, reasoning_tokens, cost_usd, error_cost_usd, cache_read_savings_usd, app_cache_hits, "
    "cost_avoided_usd, latency_sum_ms, ttft_calls, ttft_sum_ms"
)

HOURLY_SQL = f"""
WITH c AS (
    SELECT date_trunc('hour', l.start_time) AS hour, l.trace_id, l.span_id, l.start_time,
           coalesce(l.team_id, 0) AS team_id, coalesce(l.product_id, 0) AS product_id, l.provider,
           coalesce(nullif(l.model, ''), nullif(l.response_model, ''), l.request_model) AS model, l.environment, l.feature,
           l.status, l.streaming, l.cost_status, l.input_tokens, l.cached_input_tokens, l.cache_write_tokens,
           l.output_tokens, l.reasoning_tokens, l.cost_usd, l.app_cache_hit, l.cost_avoided_usd, l.duration_ms, l.ttft_ms,
           l.cached_input_tokens * (p.input - coalesce(p.cached_input_read, p.input)) AS cache_saving,
           floor(ln(greatest(l.duration_ms, {MIN_MS})) / {LOG_GAMMA})::int AS lb,
           CASE WHEN l.ttft_ms IS NOT NULL THEN floor(ln(greatest(l.ttft_ms, {MIN_MS})) / {LOG_GAMMA})::int END AS tb
    FROM ingest_llmcall l LEFT JOIN billing_price p ON p.id = l.price_id
    WHERE l.organization_id = %(org)s AND l.start_time >= %(start)s AND l.start_time < %(end)s
      AND date_trunc('hour', l.start_time) = ANY(%(hours)s)
), g AS (
    SELECT hour, {DIMENSIONS}, {SUMS} FROM c GROUP BY hour, {DIMENSIONS}
), lh AS (
    SELECT hour, {DIMENSIONS}, jsonb_object_agg(lb, n) AS buckets
    FROM (SELECT hour, {DIMENSIONS}, lb, count(*) AS n FROM c GROUP BY hour, {DIMENSIONS}, lb) x
    GROUP BY hour, {DIMENSIONS}
), th AS (
    SELECT hour, {DIMENSIONS}, jsonb_object_agg(tb, n) AS buckets
    FROM (SELECT hour, {DIMENSIONS}, tb, count(*) AS n FROM c WHERE tb IS NOT NULL GROUP BY hour, {DIMENSIONS}, tb) x
    GROUP BY hour, {DIMENSIONS}
), slow AS (
    INSERT INTO billing_hourlyslowcall (organization_id, hour, team_id, product_id, trace_id, span_id, start_time,
                                        duration_ms)
    SELECT %(org)s, hour, nullif(team_id, 0), nullif(product_id, 0), trace_id, span_id, start_time, duration_ms
    FROM (SELECT hour, team_id, product_id, trace_id, span_id, start_time, duration_ms,
                 row_number() OVER (PARTITION BY hour, team_id, product_id ORDER BY duration_ms DESC, span_id) AS rank
          FROM c) ranked
    WHERE rank <= {SLOWEST_PER_GROUP}
)
INSERT INTO billing_hourlyrollup (organization_id, hour, team_id, product_id, provider, model, environment, feature,
                                  {SUM_COLUMNS}, latency_buckets, ttft_buckets)
SELECT %(org)s, g.hour, nullif(g.team_id, 0), nullif(g.product_id, 0), g.provider, g.model, g.environment, g.feature,
       {", ".join("g." + c.strip() for c in SUM_COLUMNS.split(","))}, lh.buckets, coalesce(th.buckets, '{{}}'::jsonb)
FROM g JOIN lh USING (hour, {DIMENSIONS}) LEFT JOIN th USING (hour, {DIMENSIONS})
"""

DAILY_SQL = f"""
WITH h AS (
    SELECT * FROM billing_hourlyrollup
    WHERE organization_id = %(org)s AND hour >= %(start)s AND hour < %(end)s
      AND (hour AT TIME ZONE 'UTC')::date = ANY(%(days)s)
), g AS (
    SELECT (hour AT TIME ZONE 'UTC')::date AS day, coalesce(team_id, 0) AS team_id, coalesce(product_id, 0) AS product_id,
           provider, model, environment, feature,
           {", ".join(f"sum({c.strip()}) AS {c.strip()}" for c in SUM_COLUMNS.split(","))}
    FROM h GROUP BY 1, 2, 3, 4, 5, 6, 7
), lh AS (
    SELECT day, team_id, product_id, provider, model, environment, feature, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT (hour AT TIME ZONE 'UTC')::date AS day, coalesce(team_id, 0) AS team_id, coalesce(product_id, 0) AS product_id,
               provider, model, environment, feature, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.latency_buckets) e GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) x
    GROUP BY 1, 2, 3, 4, 5, 6, 7
), th AS (
    SELECT day, team_id, product_id, provider, model, environment, feature, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT (hour AT TIME ZONE 'UTC')::date AS day, coalesce(team_id, 0) AS team_id, coalesce(product_id, 0) AS product_id,
               provider, model, environment, feature, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.ttft_buckets) e GROUP BY 1, 2, 3, 4, 5, 6, 7, 8) x
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
INSERT INTO billing_dailyrollup (organization_id, day, team_id, product_id, provider, model, environment, feature,
                                 {SUM_COLUMNS}, latency_buckets, ttft_buckets)
SELECT %(org)s, g.day, nullif(g.team_id, 0), nullif(g.product_id, 0), g.provider, g.model, g.environment, g.feature,
       {", ".join("g." + c.strip() for c in SUM_COLUMNS.split(","))}, coalesce(lh.buckets, '{{}}'::jsonb),
       coalesce(th.buckets, '{{}}'::jsonb)
FROM g LEFT JOIN lh USING (day, team_id, product_id, provider, model, environment, feature)
       LEFT JOIN th USING (day, team_id, product_id, provider, model, environment, feature)
"""


TEAM_MODEL_KEYS = "day, team_id, product_id, provider, model"
TEAM_MODEL_DAILY_SQL = f"""
WITH h AS (
    SELECT day, coalesce(team_id, 0) AS team_id, coalesce(product_id, 0) AS product_id, provider, model, {SUM_COLUMNS},
           latency_buckets, ttft_buckets
    FROM billing_dailyrollup WHERE organization_id = %(org)s AND day = ANY(%(days)s)
), g AS (
    SELECT {TEAM_MODEL_KEYS}, {", ".join(f"sum({c.strip()}) AS {c.strip()}" for c in SUM_COLUMNS.split(","))}
    FROM h GROUP BY 1, 2, 3, 4, 5
), lh AS (
    SELECT {TEAM_MODEL_KEYS}, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT {TEAM_MODEL_KEYS}, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.latency_buckets) e GROUP BY 1, 2, 3, 4, 5, 6) x
    GROUP BY 1, 2, 3, 4, 5
), th AS (
    SELECT {TEAM_MODEL_KEYS}, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT {TEAM_MODEL_KEYS}, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.ttft_buckets) e GROUP BY 1, 2, 3, 4, 5, 6) x
    GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO billing_dailyteammodelrollup (organization_id, day, team_id, product_id, provider, model, environment, feature,
                                          {SUM_COLUMNS}, latency_buckets, ttft_buckets)
SELECT %(org)s, g.day, nullif(g.team_id, 0), nullif(g.product_id, 0), g.provider, g.model, '', '',
       {", ".join("g." + c.strip() for c in SUM_COLUMNS.split(","))}, coalesce(lh.buckets, '{{}}'::jsonb),
       coalesce(th.buckets, '{{}}'::jsonb)
FROM g LEFT JOIN lh USING ({TEAM_MODEL_KEYS}) LEFT JOIN th USING ({TEAM_MODEL_KEYS})
"""


SUMS = ", ".join(f"sum({column})" for column in SUM_COLUMNS.split(", "))
# A team's day (DailyTeamSpend) and the weeks of the days rolled up (WeeklyTeamModelSpend), from DailyTeamModelSpend.
TEAM_SPEND_SQL = f"""
INSERT INTO billing_dailyteamspend (organization_id, day, team_id, provider, model, environment, feature, {SUM_COLUMNS})
SELECT organization_id, day, team_id, '', '', '', '', {SUMS}
FROM billing_dailyteammodelspend WHERE organization_id = %(org)s AND day = ANY(%(days)s) GROUP BY 1, 2, 3
"""
WEEKLY_TEAM_MODEL_SPEND_SQL = f"""
INSERT INTO billing_weeklyteammodelspend (organization_id, week, team_id, product_id, provider, model, environment,
                                          feature, {SUM_COLUMNS})
SELECT organization_id, date_trunc('week', day)::date, team_id, product_id, provider, model, environment, feature, {SUMS}
FROM billing_dailyteammodelspend
WHERE organization_id = %(org)s AND day >= %(first)s AND day < %(last)s AND date_trunc('week', day)::date = ANY(%(periods)s)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""

TEAM_MODEL_SPEND_SQL = f"""
INSERT INTO billing_dailyteammodelspend (organization_id, day, team_id, product_id, provider, model, environment, feature,
                                         {SUM_COLUMNS})
SELECT organization_id, day, team_id, product_id, provider, model, environment, feature, {SUM_COLUMNS}
FROM billing_dailyteammodelrollup WHERE organization_id = %(org)s AND day = ANY(%(days)s)
"""


def latency_sql(source: str, target: str, period: str, dimensions: str = "provider, model",
                source_period: str = "", where: str = "") -> str:
    """Merge the histograms of `source` rollup rows into per-(period, dimensions) rows of `target`. A nullable
    dimension (product_id) is grouped as 0 and written back as NULL. `source_period` is the source's expression for
    the target's period (default: the same column) and `where` picks the source rows (default: the periods asked)."""
    source_period = source_period or period
    where = where or f"{period} = ANY(%(periods)s)"
    dims = [d.strip() for d in dimensions.split(",")]
    picked = ", ".join(f"coalesce({d}, 0) AS {d}" if d.endswith("_id") else d for d in dims)
    written = ", ".join(f"nullif(g.{d}, 0)" if d.endswith("_id") else f"g.{d}" for d in dims)
    by = ", ".join(str(i) for i in range(1, len(dims) + 2))
    return f"""
WITH h AS (
    SELECT {source_period} AS {period}, {picked}, calls, latency_buckets, ttft_buckets FROM {source}
    WHERE organization_id = %(org)s AND {where}
), g AS (
    SELECT {period}, {dimensions}, sum(calls) AS calls FROM h GROUP BY {by}
), lh AS (
    SELECT {period}, {dimensions}, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT {period}, {dimensions}, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.latency_buckets) e GROUP BY {by}, {len(dims) + 2}) x GROUP BY {by}
), th AS (
    SELECT {period}, {dimensions}, jsonb_object_agg(k, n) AS buckets FROM (
        SELECT {period}, {dimensions}, e.key AS k, sum(e.value::bigint) AS n
        FROM h, jsonb_each_text(h.ttft_buckets) e GROUP BY {by}, {len(dims) + 2}) x GROUP BY {by}
)
INSERT INTO {target} (organization_id, {period}, {dimensions}, calls, latency_buckets, ttft_buckets)
SELECT %(org)s, g.{period}, {written}, g.calls, coalesce(lh.buckets, '{{}}'::jsonb), coalesce(th.buckets, '{{}}'::jsonb)
FROM g LEFT JOIN lh USING ({period}, {dimensions}) LEFT JOIN th USING ({period}, {dimensions})
"""


HOURLY_MODEL_LATENCY_SQL = latency_sql("billing_hourlyrollup", "billing_hourlymodellatency", "hour")
DAILY_MODEL_LATENCY_SQL = latency_sql("billing_dailyrollup", "billing_dailymodellatency", "day")
HOURLY_PRODUCT_LATENCY_SQL = latency_sql("billing_hourlyrollup", "billing_hourlyproductlatency", "hour", "product_id")
DAILY_PRODUCT_LATENCY_SQL = latency_sql("billing_dailyrollup", "billing_dailyproductlatency", "day", "product_id")
# The weeks (from Monday, UTC) of the days rolled up, merged from those days' per-model and per-product rows.
IN_WEEKS = "day >= %(first)s AND day < %(last)s AND date_trunc('week', day)::date = ANY(%(periods)s)"
WEEKLY_MODEL_LATENCY_SQL = latency_sql("billing_dailymodellatency", "billing_weeklymodellatency", "week",
                                       source_period="date_trunc('week', day)::date", where=IN_WEEKS)
WEEKLY_PRODUCT_LATENCY_SQL = latency_sql("billing_dailyproductlatency", "billing_weeklyproductlatency", "week",
                                         "product_id", source_period="date_trunc('week', day)::date", where=IN_WEEKS)


def _hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def rollup_hours(organization_id: int, hours: Iterable[datetime]) -> int:
    """Recompute the hourly rows of these hours (replace, not add) and the days they fall in (the per end user,
    session and error type days from the days' calls: billing.day_rollups). Idempotent."""
    hours = sorted({_hour(h) for h in hours})
    if not hours:
        return 0
    days = sorted({h.date() for h in hours})
    with transaction.atomic(), connection.cursor() as cursor:
        # The CTE joins below match one row to one row on all dimensions; without this the planner may
        # pick nested loops over CTE scans, quadratic in the number of groups.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            "DELETE FROM billing_hourlyrollup WHERE organization_id = %s AND hour = ANY(%s)", [organization_id, hours]
        )
        cursor.execute(
            "DELETE FROM billing_hourlyslowcall WHERE organization_id = %s AND hour = ANY(%s)", [organization_id, hours]
        )
        cursor.execute(HOURLY_SQL, {"org": organization_id, "start": hours[0], "end": hours[-1] + timedelta(hours=1),
                                    "hours": hours})
        written = cursor.rowcount
        cursor.execute("DELETE FROM billing_dailyrollup WHERE organization_id = %s AND day = ANY(%s)", [organization_id, days])
        day_start = datetime.combine(days[0], datetime.min.time(), UTC)
        day_end = datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(days=1)
        cursor.execute(DAILY_SQL, {"org": organization_id, "start": day_start, "end": day_end, "days": days})
        cursor.execute("DELETE FROM billing_dailyteammodelrollup WHERE organization_id = %s AND day = ANY(%s)",
                       [organization_id, days])
        cursor.execute(TEAM_MODEL_DAILY_SQL, {"org": organization_id, "days": days})
        cursor.execute("DELETE FROM billing_dailyteammodelspend WHERE organization_id = %s AND day = ANY(%s)",
                       [organization_id, days])
        cursor.execute(TEAM_MODEL_SPEND_SQL, {"org": organization_id, "days": days})
        cursor.execute("DELETE FROM billing_dailyteamspend WHERE organization_id = %s AND day = ANY(%s)",
                       [organization_id, days])
        cursor.execute(TEAM_SPEND_SQL, {"org": organization_id, "days": days})
        cursor.execute("DELETE FROM billing_hourlymodellatency WHERE organization_id = %s AND hour = ANY(%s)",
                       [organization_id, hours])
        cursor.execute(HOURLY_MODEL_LATENCY_SQL, {"org": organization_id, "periods": hours})
        cursor.execute("DELETE FROM billing_dailymodellatency WHERE organization_id = %s AND day = ANY(%s)",
                       [organization_id, days])
        cursor.execute(DAILY_MODEL_LATENCY_SQL, {"org": organization_id, "periods": days})
        cursor.execute("DELETE FROM billing_hourlyproductlatency WHERE organization_id = %s AND hour = ANY(%s)",
                       [organization_id, hours])
        cursor.execute(HOURLY_PRODUCT_LATENCY_SQL, {"org": organization_id, "periods": hours})
        cursor.execute("DELETE FROM billing_dailyproductlatency WHERE organization_id = %s AND day = ANY(%s)",
                       [organization_id, days])
        cursor.execute(DAILY_PRODUCT_LATENCY_SQL, {"org": organization_id, "periods": days})
        weeks = sorted({week_of(day) for day in days})
        in_weeks = {"org": organization_id, "periods": weeks, "first": weeks[0], "last": weeks[-1] + timedelta(days=7)}
        for table, sql in (("billing_weeklymodellatency", WEEKLY_MODEL_LATENCY_SQL),
                           ("billing_weeklyproductlatency", WEEKLY_PRODUCT_LATENCY_SQL),
                           ("billing_weeklyteammodelspend", WEEKLY_TEAM_MODEL_SPEND_SQL)):
            cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s AND week = ANY(%s)",
                           [organization_id, weeks])
            cursor.execute(sql, in_weeks)
        rollup_days(organization_id, days)
    return written


def touched_hours(organization_id: int, since: datetime, until: datetime) -> list[datetime]:
    """Hours of one organization holding calls ingested or changed in (since, until]."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT date_trunc('hour', start_time) FROM ingest_llmcall "
            "WHERE organization_id = %s AND ingested_at > %s AND ingested_at <= %s",
            [organization_id, since, until],
        )
        return [row[0] for row in cursor.fetchall()]


def _problem(error: BaseException) -> str:
    return f"{error.__class__.__name__}: {error}"[:500]


def _must_stop(error: Exception) -> bool:
    """The database itself is unreachable: no hour or organization is to blame, the whole run stops."""
    return isinstance(error, OperationalError | InterfaceError)


def _rollup_or_blame(organization_id: int, hours: list[datetime], failed: dict[datetime, str]) -> int:
    """Roll up `hours` in one transaction; if that fails, hour by hour, noting in `failed` the hours to blame."""
    try:
        return rollup_hours(organization_id, hours)
    except Exception as error:
        if _must_stop(error):
            raise
        if len(hours) == 1:
            log.exception("rolling up %s of organization %s failed", hours[0], organization_id)
            failed[hours[0]] = _problem(error)
            return 0
    return sum(_rollup_or_blame(organization_id, [hour], failed) for hour in hours)


def _state_of(organization_id: int) -> RollupState:
    state, _ = RollupState.objects.get_or_create(name="hourly", organization_id=organization_id,
                                                 defaults={"watermark": NEVER_ROLLED})
    return state


def rollup_organization(organization_id: int, until: datetime, hours_per_transaction: int = 48) -> dict:
    """Roll up one organization's hours touched since its watermark, plus the hours that failed before, then move
    its watermark to `until`. An hour whose rollup fails is logged, kept in `failed_hours` with the reason and
    retried on the next run; the organization's other hours go on."""
    state = _state_of(organization_id)
    failed_before = {datetime.fromisoformat(hour) for hour in state.failed_hours}
    since = state.watermark - WATERMARK_OVERLAP
    touched = touched_hours(organization_id, since, until)
    if touched:  # a late duplicate corrects the stored call: the hours of its group are rolled up again
        touched = [*touched, *merge_late_duplicates(organization_id, since, until)]
    hours = sorted({*touched, *failed_before})
    rows, failed = 0, {}
    for offset in range(0, len(hours), hours_per_transaction):
        rows += _rollup_or_blame(organization_id, hours[offset:offset + hours_per_transaction], failed)
    state.watermark = until
    state.failed_hours = {hour.astimezone(UTC).isoformat(): problem for hour, problem in sorted(failed.items())}
    state.last_error, state.failing_since = "", None
    state.updated_at = timezone.now()
    state.save(update_fields=["watermark", "failed_hours", "last_error", "failing_since", "updated_at"])
    return {"hours": len(hours) - len(failed), "rows": rows, "failed_hours": len(failed)}


def rollup_pending(hours_per_transaction: int = 48) -> dict:
    """The beat job: roll up every organization's touched hours, then move that organization's watermark. One
    organization's failure is logged and recorded on its RollupState (the settings page and /readyz show it) and
    the others go on; it is retried on the next run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        if not cursor.fetchone()[0]:
            return {"skipped": "another rollup is running"}
    try:
        until = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM observatory_organization ORDER BY id")
            organizations = [row[0] for row in cursor.fetchall()]
        totals = {"organizations": 0, "hours": 0, "rows": 0, "failed_hours": 0, "failed_organizations": 0}
        for organization_id in organizations:
            try:
                done = rollup_organization(organization_id, until, hours_per_transaction)
            except Exception as error:
                if _must_stop(error):
                    raise
                log.exception("rolling up organization %s failed", organization_id)
                _record_failure(organization_id, error)
                totals["failed_organizations"] += 1
                continue
            if done["hours"] or done["failed_hours"]:
                totals["organizations"] += 1
            totals["hours"] += done["hours"]
            totals["rows"] += done["rows"]
            totals["failed_hours"] += done["failed_hours"]
        return totals
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _record_failure(organization_id: int, error: Exception) -> None:
    now = timezone.now()
    state = _state_of(organization_id)
    state.last_error = _problem(error)
    state.failing_since = state.failing_since or now
    state.updated_at = now
    state.save(update_fields=["last_error", "failing_since", "updated_at"])


@dataclass(frozen=True)
class RollupProgress:
    """Where one organization's rollups stand: they hold its calls ingested up to `watermark`, except in
    `failed_hours`, whose rollup rows may be stale or missing."""

    watermark: datetime
    failed_hours: frozenset[datetime] = frozenset()


def rollup_progress(organization_id: int) -> RollupProgress:
    state = RollupState.objects.filter(name="hourly", organization_id=organization_id).first()
    if state is None:
        return RollupProgress(NEVER_ROLLED)
    return RollupProgress(state.watermark, frozenset(datetime.fromisoformat(hour) for hour in state.failed_hours))


def unrolled_hours(organization_id: int, start: datetime, end: datetime, progress: RollupProgress) -> set[datetime]:
    """UTC hours with calls in [start, end) whose rollup rows may not match the calls: a call in them was ingested
    (or re-priced, or re-attributed: both touch `ingested_at`) after the organization's watermark, or their rollup
    failed. Readers take these hours from the raw calls and every other hour from the rollups, so a call is
    counted once however far behind — or half done — the rollup job is."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT date_trunc('hour', start_time) FROM ingest_llmcall "
            "WHERE organization_id = %s AND ingested_at > %s AND start_time >= %s AND start_time < %s",
            [organization_id, progress.watermark, start, end],
        )
        hours = {row[0].astimezone(UTC) for row in cursor.fetchall()}
    return hours | {hour for hour in progress.failed_hours if _hour(start) <= hour < end}


def hour_ranges(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours merged into [start, end) ranges: 10:00, 11:00, 14:00 → [10:00, 12:00), [14:00, 15:00)."""
    ranges: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + timedelta(hours=1))
        else:
            ranges.append((hour, hour + timedelta(hours=1)))
    return ranges


def bucket_value(bucket: int) -> float:
    """The representative value of a bucket: its geometric middle (error ≤ √1.05 − 1 ≈ 2.5%)."""
    return GAMMA ** (bucket + 0.5)


def percentiles_from_buckets(buckets: dict[int, int], quantiles: Iterable[float]) -> dict[float, float | None]:
    """Nearest-rank percentiles of a merged histogram."""
    total = sum(buckets.values())
    quantiles = list(quantiles)
    if total == 0:
        return {q: None for q in quantiles}
    ordered = sorted(buckets.items())
    result = {}
    for q in quantiles:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket, count in ordered:
            seen += count
            if seen >= rank:
                result[q] = bucket_value(bucket)
                break
    return result


def merge_buckets(histograms: Iterable[dict]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            bucket = int(key)
            merged[bucket] = merged.get(bucket, 0) + int(count)
    return merged
