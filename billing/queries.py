"""Reads for the dashboard and API: spend, percentiles, cache savings, GPU cost, top movers — from rollups.

Every function takes a `Scope` (an organization, optionally narrowed to some teams) so no query can
leave the requester's teams. Ranges are [start, end) in UTC; full days come from daily rollups and
the partial days at either end from hourly rollups, so totals are exact at any boundary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet, Sum

from billing.day_rollups import week_of
from billing.models import (
    DailyModelLatency,
    DailyProductLatency,
    DailyRollup,
    DailyTeamModelRollup,
    DailyTeamModelSpend,
    DailyTeamSpend,
    GpuCostHour,
    HourlyModelLatency,
    HourlyProductLatency,
    HourlyRollup,
    WeeklyModelLatency,
    WeeklyProductLatency,
    WeeklyTeamModelSpend,
)
from billing.rollups import percentiles_from_buckets
from observatory.access import Scope

GROUPABLE = ("team", "product", "provider", "model", "environment", "feature")
SUMMED = (
    "calls", "errors", "streaming_calls", "unpriced_calls", "implausible_calls", "usage_missing_calls", "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost_usd", "error_cost_usd", "cache_read_savings_usd",
    "app_cache_hits", "cost_avoided_usd", "latency_sum_ms", "ttft_calls", "ttft_sum_ms",
)
ZERO = Decimal(0)
# Each sum in its column's own type (PostgreSQL sums bigints as numeric).
_CAST = {"BigIntegerField": "::bigint", "FloatField": "::float8", "DecimalField": ""}
SUMS_SQL = ", ".join(f'sum(u."{name}"){_CAST[DailyTeamModelSpend._meta.get_field(name).get_internal_type()]} AS "{name}"'
                     for name in SUMMED)


def _midnight_after(moment: datetime) -> datetime:
    day = datetime.combine(moment.astimezone(UTC).date(), datetime.min.time(), UTC)
    return day if day == moment else day + timedelta(days=1)


TEAM_MODEL_FIELDS = frozenset({"team_id", "product_id", "provider", "model"})
DAILY_MODELS = (DailyRollup, DailyTeamModelRollup, DailyTeamModelSpend, DailyTeamSpend, DailyModelLatency,
                DailyProductLatency)


def rollup_pieces(scope: Scope, start: datetime, end: datetime, fields: Sequence[str] | None = None,
                  histograms: bool = False, weekly: bool = False) -> list[QuerySet]:
    """Querysets whose rows together cover [start, end) exactly once. Reads that group by no more than `fields`
    (given, and within team, product, provider and model) take whole days from the smaller DailyTeamModelSpend, or
    DailyTeamModelRollup when they read the latency `histograms`; by team or nothing, from DailyTeamSpend. With
    `weekly` (a read that sums the whole range, never one per day), whole UTC weeks come from WeeklyTeamModelSpend."""
    daily = DailyRollup
    if fields is not None and set(fields) <= TEAM_MODEL_FIELDS:
        daily = DailyTeamModelRollup if histograms else DailyTeamModelSpend
        if daily is DailyTeamModelSpend and set(fields) <= {"team_id"} and type(scope) is Scope:
            daily = DailyTeamSpend  # no product in its rows: not for a product's scope
    weeks = WeeklyTeamModelSpend.objects.filter(scope.q()) if weekly and daily is DailyTeamModelSpend else None
    return _range_pieces(start, end, HourlyRollup.objects.filter(scope.q()), daily.objects.filter(scope.q()), weeks)


def _range_pieces(start: datetime, end: datetime, hours: QuerySet, days: QuerySet, weeks: QuerySet | None
                  ) -> list[QuerySet]:
    """[start, end) cut into pieces that cover it exactly once: the rows of `hours` for the partial days at either
    end, of `days` for the whole days between, and, given `weeks` (rows per Monday-to-Sunday `week`), the whole UTC
    weeks among those days from it."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first_midnight = _midnight_after(start)
    last_midnight = datetime.combine(end.date(), datetime.min.time(), UTC)
    if first_midnight >= last_midnight:
        return [hours.filter(hour__gte=start, hour__lt=end)]
    first_day, last_day = first_midnight.date(), last_midnight.date()
    monday_in, monday_out = whole_weeks(first_day, last_day)
    if weeks is not None and monday_in < monday_out:
        pieces = [weeks.filter(week__gte=monday_in, week__lt=monday_out)]
        if first_day < monday_in:
            pieces.insert(0, days.filter(day__gte=first_day, day__lt=monday_in))
        if monday_out < last_day:
            pieces.append(days.filter(day__gte=monday_out, day__lt=last_day))
    else:
        pieces = [days.filter(day__gte=first_day, day__lt=last_day)]
    if start < first_midnight:  # a range of whole days (the 7- and 30-day ones) reads the daily rows only
        pieces.insert(0, hours.filter(hour__gte=start, hour__lt=first_midnight))
    if last_midnight < end:
        pieces.append(hours.filter(hour__gte=last_midnight, hour__lt=end))
    return pieces


def _group_fields(group_by: Sequence[str]) -> list[str]:
    fields = []
    for name in group_by:
        if name not in GROUPABLE:
            raise ValueError(f"cannot group by {name!r}: use {', '.join(GROUPABLE)}")
        fields.append(f"{name}_id" if name in ("team", "product") else name)
    return fields


def with_derived(row: dict) -> dict:
    """Add cost per 1,000 calls, tokens per call, error rate, cache hit rate and averages to a summed row."""
    calls = row.get("calls") or 0
    cost = row.get("cost_usd") or ZERO
    input_tokens = row.get("input_tokens") or 0
    row["cost_per_1k_calls"] = (cost * 1000 / calls) if calls else None
    row["tokens_per_call"] = ((input_tokens + (row.get("output_tokens") or 0)) / calls) if calls else None
    row["error_rate"] = (row.get("errors", 0) / calls) if calls else None
    row["cache_hit_rate"] = ((row.get("cached_input_tokens") or 0) / input_tokens) if input_tokens else None
    row["mean_latency_ms"] = (row.get("latency_sum_ms", 0) / calls) if calls else None
    ttft_calls = row.get("ttft_calls") or 0
    row["mean_ttft_ms"] = (row.get("ttft_sum_ms", 0) / ttft_calls) if ttft_calls else None
    return row


def spend(scope: Scope, start: datetime, end: datetime, group_by: Sequence[str] = ()) -> list[dict]:
    """Summed calls, tokens and dollars per group over the range, most expensive first: the range's pieces (weeks,
    days, hours) summed by PostgreSQL in one query."""
    fields = _group_fields(group_by)
    parts, params = [], []
    for piece in rollup_pieces(scope, start, end, fields, weekly=True):
        sql, piece_params = piece.values(*fields, *SUMMED).query.sql_with_params()
        parts.append(sql)
        params.extend(piece_params)
    keys = ", ".join(f'u."{name}"' for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {keys + ', ' if fields else ''}{SUMS_SQL} FROM ({' UNION ALL '.join(parts)}) u "  # noqa: S608
            f"{'GROUP BY ' + keys if fields else ''}",  # (column names from GROUPABLE and SUMMED only)
            params,
        )
        columns = [*fields, *SUMMED]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    if not fields and rows and rows[0]["calls"] is None:
        return []  # nothing in the range
    rows = [with_derived(row) for row in rows]
    rows.sort(key=lambda r: r["cost_usd"], reverse=True)
    return rows


def total(scope: Scope, start: datetime, end: datetime) -> dict:
    rows = spend(scope, start, end)
    return rows[0] if rows else with_derived({name: 0 for name in SUMMED})


def timeseries(scope: Scope, start: datetime, end: datetime, interval: str = "day", group_by: Sequence[str] = (),
               columns: Sequence[str] = SUMMED) -> list[dict]:
    """Spend per hour or per day (UTC), optionally split by a grouping; `columns` (of SUMMED) limits the sums read to
    what a chart shows, which makes a long series several times cheaper."""
    fields = _group_fields(group_by)
    if not set(columns) <= set(SUMMED):
        raise ValueError(f"columns are some of {', '.join(SUMMED)}")
    sums = {n: Sum(n) for n in columns}
    if interval == "hour":
        rows = (HourlyRollup.objects.filter(scope.q(), hour__gte=start, hour__lt=end)
                .values("hour", *fields).annotate(**sums).order_by("hour"))
        return [with_derived({**row, "period": row.pop("hour")}) for row in rows]
    if interval != "day":
        raise ValueError("interval is 'hour' or 'day'")
    series: dict[tuple, dict] = {}
    for piece in rollup_pieces(scope, start, end, fields):
        time_field = "day" if piece.model in DAILY_MODELS else "hour"
        for row in piece.values(time_field, *fields).annotate(**sums).order_by():
            moment = row[time_field]
            day = moment if time_field == "day" else moment.astimezone(UTC).date()
            key = (day, *(row[f] for f in fields))
            target = series.setdefault(key, {"period": day, **{f: row[f] for f in fields}, **{n: 0 for n in columns}})
            for name in columns:
                target[name] += row[name] or 0
    return [with_derived(series[key]) for key in sorted(series)]


def percentiles(
    scope: Scope, start: datetime, end: datetime, group_by: Sequence[str] = ("model",), metric: str = "latency",
    quantiles: Iterable[float] = (0.5, 0.95, 0.99),
) -> list[dict]:
    """p50/p95/p99 (ms) of latency or time to first token per group, from the rollups' histograms."""
    if metric not in ("latency", "ttft"):
        raise ValueError("metric is 'latency' or 'ttft'")
    fields = _group_fields(group_by)
    column = f"{metric}_buckets"
    by_key: dict[tuple, dict[int, int]] = {}
    for piece in latency_pieces(scope, start, end, fields, weekly=True):
        for *key, bucket, count in _summed_buckets(piece, fields, column):
            merged = by_key.setdefault(tuple(key), {})
            merged[bucket] = merged.get(bucket, 0) + count
    return percentile_rows(fields, by_key, quantiles)


def histograms(scope: Scope, start: datetime, end: datetime, group_by: Sequence[str] = ("model",),
               only: Sequence | None = None, per_day: bool = False) -> dict[str, dict[tuple, dict[int, int]]]:
    """{"latency": {group key: {bucket: calls}}, "ttft": {…}}: both histograms per group, each row of the rollups read
    once and merged by PostgreSQL (what `percentiles` reads for one metric). `only` keeps the groups of a one-field
    grouping with these keys (None among them: the calls without one); `per_day` puts the UTC day first in each key."""
    fields = _group_fields(group_by)
    merged: dict[str, dict[tuple, dict[int, int]]] = {"latency": {}, "ttft": {}}
    for piece in latency_pieces(scope, start, end, fields, weekly=not per_day):
        if only is not None:
            piece = piece.filter(_keys_in(fields, only))
        columns, keys = list(fields), [f'p."{name}"' for name in fields]
        if per_day:
            daily = piece.model in DAILY_MODELS
            columns.insert(0, "day" if daily else "hour")
            keys.insert(0, 'p."day"' if daily else "(p.\"hour\" AT TIME ZONE 'UTC')::date")
        inner, params = piece.values(*columns, "latency_buckets", "ttft_buckets").query.sql_with_params()
        select = f"{', '.join(keys)}, " if keys else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {select}e.metric, e.key::int, sum(e.value::bigint)::bigint "  # noqa: S608 (whitelisted names)
                f"FROM ({inner}) p, LATERAL (SELECT 'latency' AS metric, key, value FROM jsonb_each_text(p.latency_buckets) "
                f"UNION ALL SELECT 'ttft', key, value FROM jsonb_each_text(p.ttft_buckets)) e "
                f"GROUP BY {select}e.metric, e.key",
                params,
            )
            for *key, metric, bucket, count in cursor.fetchall():
                target = merged[metric].setdefault(tuple(key), {})
                target[bucket] = target.get(bucket, 0) + count
    return merged


def busiest(scope: Scope, start: datetime, end: datetime, group: str, limit: int) -> tuple[list, int]:
    """The keys of the `limit` groups (by `group`, one field) with the most calls over the range, busiest first, and
    how many groups had calls: from the calls counted beside the histograms, so no histogram is read."""
    fields = _group_fields((group,))
    calls: dict = {}
    for piece in latency_pieces(scope, start, end, fields, weekly=True):
        for key, count in piece.values(fields[0]).annotate(n=Sum("calls")).order_by().values_list(fields[0], "n"):
            calls[key] = calls.get(key, 0) + (count or 0)
    ranked = sorted((key for key, count in calls.items() if count), key=lambda key: (-calls[key], key is None, key))
    return ranked[:limit], len(ranked)


def _keys_in(fields: list[str], keys: Sequence) -> Q:
    if len(fields) != 1:
        raise ValueError("`only` keeps groups of one field")
    known = [key for key in keys if key is not None]
    found = Q(**{f"{fields[0]}__in": known})
    return found | Q(**{f"{fields[0]}__isnull": True}) if None in keys else found


def percentile_rows(fields: Sequence[str], merged: dict[tuple, dict[int, int]],
                    quantiles: Iterable[float] = (0.5, 0.95, 0.99)) -> list[dict]:
    """`percentiles`' rows from merged histograms (busiest group first)."""
    quantiles = tuple(quantiles)
    out = []
    for key, buckets in merged.items():
        count = sum(buckets.values())
        if not count:
            continue
        values = percentiles_from_buckets(buckets, quantiles)
        out.append({**dict(zip(fields, key, strict=True)), "count": count,
                    **{f"p{round(q * 100):d}": values[q] for q in quantiles}})
    out.sort(key=lambda r: r["count"], reverse=True)
    return out


def _summed_buckets(piece: QuerySet, fields: list[str], column: str) -> list[tuple]:
    """(group fields…, bucket, count) with the histograms of the piece's rows summed inside PostgreSQL."""
    inner, params = piece.values(*fields, column).query.sql_with_params()
    names = ", ".join(f'p."{name}"' for name in fields)
    select = f"{names}, " if fields else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {select}e.key::int, sum(e.value::bigint)::bigint "  # noqa: S608 (field names are whitelisted)
            f'FROM ({inner}) p, jsonb_each_text(p."{column}") e GROUP BY {select}e.key',
            params,
        )
        return cursor.fetchall()


def latency_pieces(scope: Scope, start: datetime, end: datetime, fields: list[str], weekly: bool = False
                   ) -> list[QuerySet]:
    """Like rollup_pieces, but org-wide queries grouped by nothing, provider or model read the small
    per-model histograms (HourlyModelLatency / DailyModelLatency), and by product the per-product ones, instead
    of every group's rows. With `weekly` (a read that merges the whole range, never one per day), the range's whole
    UTC weeks come from WeeklyModelLatency / WeeklyProductLatency."""
    if scope.team_ids is not None or type(scope) is not Scope:
        return rollup_pieces(scope, start, end, fields, histograms=True)
    if set(fields) <= {"provider", "model"}:
        hourly_model, daily_model, weekly_model = HourlyModelLatency, DailyModelLatency, WeeklyModelLatency
    elif fields == ["product_id"]:
        hourly_model, daily_model, weekly_model = HourlyProductLatency, DailyProductLatency, WeeklyProductLatency
    else:
        return rollup_pieces(scope, start, end, fields, histograms=True)
    org = scope.organization_id
    return _range_pieces(start, end, hourly_model.objects.filter(organization_id=org),
                         daily_model.objects.filter(organization_id=org),
                         weekly_model.objects.filter(organization_id=org) if weekly else None)


def whole_weeks(first: date, last: date) -> tuple[date, date]:
    """The first Monday on or after `first` and the last Monday on or before `last`: the whole UTC weeks of the days
    [first, last) are those in between (none when the first is not before the second)."""
    return first + timedelta(days=(7 - first.weekday()) % 7), week_of(last)


def exact_percentiles(scope: Scope, start: datetime, end: datetime, column: str = "duration_ms",
                      quantiles: Sequence[float] = (0.5, 0.95, 0.99)) -> list[float]:
    """Exact nearest-rank percentiles over raw calls (slow; for checks and benchmarks)."""
    if column not in ("duration_ms", "ttft_ms"):
        raise ValueError(column)
    teams = "" if scope.team_ids is None else "AND team_id = ANY(%(teams)s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT percentile_disc(%(q)s) WITHIN GROUP (ORDER BY {column}) FROM ingest_llmcall "  # noqa: S608 (checked)
            f"WHERE organization_id = %(org)s AND start_time >= %(start)s AND start_time < %(end)s "
            f"AND {column} IS NOT NULL {teams}",
            {"q": list(quantiles), "org": scope.organization_id, "start": start, "end": end,
             "teams": list(scope.team_ids or ())},
        )
        return list(cursor.fetchone()[0] or [])


def regroup(rows: Iterable[dict], group_by: Sequence[str]) -> list[dict]:
    """spend() rows grouped by more fields, summed down to `group_by` (a subset), most expensive first: one query
    by (team, model) answers by team, by model and the total (group_by empty: always one row)."""
    fields = _group_fields(group_by)
    merged: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[f] for f in fields)
        target = merged.setdefault(key, {**{f: row[f] for f in fields}, **{name: 0 for name in SUMMED}})
        for name in SUMMED:
            target[name] += row[name] or 0
    if not fields and not merged:
        merged[()] = {name: 0 for name in SUMMED}  # the total of nothing, as total() gives it
    result = [with_derived(row) for row in merged.values()]
    result.sort(key=lambda r: r["cost_usd"], reverse=True)
    return result


def top_movers(scope: Scope, start: datetime, end: datetime, group_by: str = "team", limit: int = 5,
               current: list[dict] | None = None, previous: list[dict] | None = None) -> list[dict]:
    """Groups whose spend changed most against the previous period of the same length.

    `current` and `previous` may pass spend() by `group_by` for the range and the one before when the caller
    already has them."""
    length = end - start
    field = _group_fields([group_by])[0]
    current = spend(scope, start, end, [group_by]) if current is None else current
    previous = spend(scope, start - length, start, [group_by]) if previous is None else previous
    now = {row[field]: row["cost_usd"] for row in current}
    before = {row[field]: row["cost_usd"] for row in previous}
    movers = []
    for key in set(now) | set(before):
        current, previous = now.get(key, ZERO), before.get(key, ZERO)
        change = current - previous
        movers.append({group_by: key, "cost_usd": current, "previous_cost_usd": previous, "change_usd": change,
                       "change_ratio": (change / previous) if previous else None})
    movers.sort(key=lambda m: abs(m["change_usd"]), reverse=True)
    return movers[:limit]


def gpu_cost(scope: Scope, start: datetime, end: datetime) -> dict:
    """GPU pool cost in the range: per team, unattributed, and idle."""
    rows = GpuCostHour.objects.filter(organization_id=scope.organization_id, hour__gte=start, hour__lt=end)
    if scope.team_ids is not None:
        rows = rows.filter(team_id__in=scope.team_ids, is_idle=False)
    by_team = {team: cost for team, cost in rows.filter(is_idle=False).values_list("team_id").annotate(c=Sum("cost_usd"))}
    idle = rows.filter(is_idle=True).aggregate(c=Sum("cost_usd"))["c"] or ZERO
    total_cost = sum(by_team.values(), ZERO) + idle
    return {"by_team": by_team, "idle_usd": idle, "total_usd": total_cost,
            "idle_share": (idle / total_cost) if total_cost else None}


def day_split(start: datetime, end: datetime) -> tuple[tuple[date, date] | None, list[tuple[datetime, datetime]]]:
    """[start, end) as the whole UTC days [first, last) in it (None without one) and the [start, end) pieces of
    partial days left at either end, which day-only rollups read from the raw calls."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first_midnight = _midnight_after(start)
    last_midnight = datetime.combine(end.date(), datetime.min.time(), UTC)
    if first_midnight >= last_midnight:
        return None, [(start, end)] if start < end else []
    edges = [(a, b) for a, b in ((start, first_midnight), (last_midnight, end)) if a < b]
    return (first_midnight.date(), last_midnight.date()), edges


def _day_and_raw(scope: Scope, start: datetime, end: datetime, table: str, rolled: str, raw: str,
                 rolled_where: str = "", raw_where: str = "", weekly_table: str = "") -> tuple[str, dict]:
    """A UNION ALL of `rolled` columns from a daily `table` over the range's whole days and `raw` columns from the
    calls of its partial days, both kept to the scope's teams (and to `rolled_where` / `raw_where`); with a
    `weekly_table` (rows per Monday-to-Sunday `week`), the range's whole weeks come from it. Only a whole
    organization or some of its teams: these tables have no product. Column and table names are our constants."""
    if type(scope) is not Scope:
        raise ValueError("day rollups are read for an organization or some of its teams, not a product")
    days, edges = day_split(start, end)
    teams = "" if scope.team_ids is None else " AND team_id = ANY(%(teams)s)"
    params: dict = {"org": scope.organization_id, "teams": list(scope.team_ids or ())}
    parts = []
    if days:
        first, last = days
        spans = [(first, last, table, "day")]
        monday_in, monday_out = whole_weeks(first, last)
        if weekly_table and monday_in < monday_out:
            spans = [(first, monday_in, table, "day"), (monday_in, monday_out, weekly_table, "week"),
                     (monday_out, last, table, "day")]
        for i, (span_start, span_end, source, column) in enumerate(spans):
            if span_start < span_end:
                params.update({f"a{i}": span_start, f"b{i}": span_end})
                parts.append(f"SELECT {rolled} FROM {source} WHERE organization_id = %(org)s "  # noqa: S608
                             f"AND {column} >= %(a{i})s AND {column} < %(b{i})s{teams}{rolled_where}")
    for i, (edge_start, edge_end) in enumerate(edges):
        params.update({f"s{i}": edge_start, f"e{i}": edge_end})
        parts.append(f"SELECT {raw} FROM ingest_llmcall WHERE organization_id = %(org)s "  # noqa: S608
                     f"AND start_time >= %(s{i})s AND start_time < %(e{i})s{teams}{raw_where}")
    return " UNION ALL ".join(parts) or f"SELECT {rolled} FROM {table} WHERE false", params  # noqa: S608


CALLER_TABLES = {"end_user": "billing_dailyenduserspend", "session": "billing_dailysessionspend"}


def top_callers(scope: Scope, start: datetime, end: datetime, field: str = "end_user", limit: int = 100) -> list[dict]:
    """End users (or sessions) by spend over the range, most expensive first: their calls, errors, tokens, cost and
    last call. Whole days come from the daily rollups, partial days from the calls. Calls naming none are left out."""
    named = f" AND {field} <> ''"
    columns = f"{field} AS key, calls, errors, input_tokens, output_tokens, cost_usd, last_seen"
    raw_columns = (f"{field} AS key, 1 AS calls, (status = 'error')::int AS errors, input_tokens, output_tokens, "
                   "cost_usd, start_time AS last_seen")
    if field == "session":
        rows, params = _sessions(scope, start, end, columns, raw_columns, limit)
    else:  # end users come back day after day: whole weeks from the weekly rows
        rows, params = _day_and_raw(scope, start, end, CALLER_TABLES[field], columns, raw_columns, named, named,
                                    weekly_table="billing_weeklyenduserspend")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT key, sum(calls)::bigint, sum(errors)::bigint, sum(input_tokens)::bigint, "  # noqa: S608
            f"sum(output_tokens)::bigint, sum(cost_usd), max(last_seen) FROM ({rows}) x "
            f"GROUP BY key ORDER BY 6 DESC NULLS LAST, 2 DESC, key LIMIT %(limit)s",
            {**params, "limit": limit},
        )
        names = (field, "calls", "errors", "input_tokens", "output_tokens", "cost_usd", "last_seen")
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _sessions(scope: Scope, start: datetime, end: datetime, columns: str, raw_columns: str,
              limit: int) -> tuple[str, dict]:
    """top_callers' rows for sessions. Summing ~150k session-days of a month takes PostgreSQL most of a second, but a
    session is almost always one row (one day, one team): a row not `shared` is its session's whole total, so only
    the `limit` most expensive of those can be among the top ones, and an index gives them in order. The rest — the
    shared rows, the partial days' calls, and any whole row of a session that also has calls there — are summed."""
    days, edges = day_split(start, end)
    teams = "" if scope.team_ids is None else " AND team_id = ANY(%(teams)s)"
    params: dict = {"org": scope.organization_id, "teams": list(scope.team_ids or ()), "limit": limit}
    raw = []
    for i, (edge_start, edge_end) in enumerate(edges):
        params.update({f"s{i}": edge_start, f"e{i}": edge_end})
        raw.append(f"SELECT {raw_columns} FROM ingest_llmcall WHERE organization_id = %(org)s "  # noqa: S608
                   f"AND start_time >= %(s{i})s AND start_time < %(e{i})s{teams} AND session <> ''")
    parts = list(raw)
    if days:
        params.update(first=days[0], last=days[1])
        rolled = (f"FROM billing_dailysessionspend WHERE organization_id = %(org)s AND day >= %(first)s "
                  f"AND day < %(last)s{teams} AND session <> ''")
        in_raw = f" AND session IN (SELECT key FROM ({' UNION ALL '.join(raw)}) r)" if raw else ""  # noqa: S608
        not_in_raw = f" AND session NOT IN (SELECT key FROM ({' UNION ALL '.join(raw)}) r)" if raw else ""  # noqa: S608
        parts.append(f"(SELECT {columns} {rolled} AND NOT shared{not_in_raw} "
                     "ORDER BY cost_usd DESC NULLS LAST, calls DESC, session LIMIT %(limit)s)")
        parts.append(f"SELECT {columns} {rolled} AND shared")
        if raw:
            parts.append(f"SELECT {columns} {rolled} AND NOT shared{in_raw}")
    return " UNION ALL ".join(parts) or "SELECT NULL AS key, 0 AS calls, 0 AS errors, 0 AS input_tokens, " \
        "0 AS output_tokens, NULL::numeric AS cost_usd, NULL::timestamptz AS last_seen WHERE false", params


def calls_naming_callers(scope: Scope, start: datetime, end: datetime) -> dict:
    """How many calls the range has (from the rollups), and how many of them name an end user / a session: all but
    those the daily rows kept under the empty name (a small partial index) and the partial days' calls naming none."""
    everything = sum((piece.aggregate(n=Sum("calls"))["n"] or 0 for piece in rollup_pieces(scope, start, end, ())), 0)
    counts = {"calls": everything}
    for field, name in (("end_user", "with_user"), ("session", "with_session")):
        unnamed = f" AND {field} = ''"
        rows, params = _day_and_raw(scope, start, end, CALLER_TABLES[field], "calls", "1 AS calls", unnamed, unnamed)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(sum(calls), 0)::bigint FROM ({rows}) x", params)  # noqa: S608
            counts[name] = everything - cursor.fetchone()[0]
    return counts


def error_types(scope: Scope, start: datetime, end: datetime, limit: int = 50) -> list[dict]:
    """Failed calls by error type and HTTP status over the range, most first: calls, cost and the last one."""
    rows, params = _day_and_raw(scope, start, end, "billing_dailyerrortype",
                                "error_type, http_status, calls, cost_usd, last_seen",
                                "error_type, http_status, 1 AS calls, cost_usd, start_time AS last_seen",
                                raw_where=" AND status = 'error'")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT error_type, http_status, sum(calls)::bigint, sum(cost_usd), max(last_seen) "  # noqa: S608
            f"FROM ({rows}) x GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 NULLS FIRST LIMIT %(limit)s",
            {**params, "limit": limit},
        )
        names = ("error_type", "http_status", "calls", "cost_usd", "last_seen")
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
