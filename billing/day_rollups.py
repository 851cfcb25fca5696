"""Daily rollups recomputed from a whole UTC day of calls: spend per end user and per session (the users page) and
failed calls per error type (the errors page).

Their keys have too many values for the hourly rollups (thousands of end users), but a day's rows are few against
its calls. The rollup job calls `rollup_days` for the days of the hours it rolls up, in the same transaction; each day
is deleted and written again from its calls (one partition), so rolling a day up again replaces it, never adds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db import connection

CALLERS_SQL = """
WITH c AS MATERIALIZED (
    SELECT team_id, end_user, session, status, input_tokens, output_tokens, cost_usd, start_time FROM ingest_llmcall
    WHERE organization_id = %(org)s AND start_time >= %(start)s AND start_time < %(end)s
), users AS (
    INSERT INTO billing_dailyenduserspend (organization_id, day, team_id, end_user, calls, errors, input_tokens,
                                           output_tokens, cost_usd, last_seen)
    SELECT %(org)s, %(day)s, team_id, end_user, count(*), count(*) FILTER (WHERE status = 'error'), sum(input_tokens),
           sum(output_tokens), sum(cost_usd), max(start_time)
    FROM c GROUP BY team_id, end_user
)
INSERT INTO billing_dailysessionspend (organization_id, day, team_id, session, calls, errors, input_tokens, output_tokens,
                                       cost_usd, last_seen, shared)
SELECT %(org)s, %(day)s, team_id, session, count(*), count(*) FILTER (WHERE status = 'error'), sum(input_tokens),
       sum(output_tokens), sum(cost_usd), max(start_time), true
FROM c GROUP BY team_id, session
"""

ERROR_TYPES_SQL = """
INSERT INTO billing_dailyerrortype (organization_id, day, team_id, error_type, http_status, calls, cost_usd, last_seen)
SELECT %(org)s, %(day)s, team_id, error_type, http_status, count(*), sum(cost_usd), max(start_time)
FROM ingest_llmcall
WHERE organization_id = %(org)s AND status = 'error' AND start_time >= %(start)s AND start_time < %(end)s
GROUP BY team_id, error_type, http_status
"""

# A session's rows (any day, any team) are `shared` when it has more than one: the users page sums those, and reads
# the others (almost all: a session rarely outlives its day) as they are. Kept for every session of a day just
# written, on that day's rows and the session's rows of other days.
SHARED_SESSIONS_SQL = """
UPDATE billing_dailysessionspend s
SET shared = EXISTS (SELECT 1 FROM billing_dailysessionspend o
                     WHERE o.organization_id = s.organization_id AND o.session = s.session AND o.id <> s.id)
WHERE s.organization_id = %(org)s AND s.session IN (
    SELECT session FROM billing_dailysessionspend WHERE organization_id = %(org)s AND day = %(day)s AND session <> '')
"""

# The weeks of the days just written, rebuilt from their daily end-user rows (UTC weeks from Monday).
WEEKLY_END_USERS_SQL = """
INSERT INTO billing_weeklyenduserspend (organization_id, week, team_id, end_user, calls, errors, input_tokens,
                                        output_tokens, cost_usd, last_seen)
SELECT %(org)s, date_trunc('week', day)::date, team_id, end_user, sum(calls), sum(errors), sum(input_tokens),
       sum(output_tokens), sum(cost_usd), max(last_seen)
FROM billing_dailyenduserspend
WHERE organization_id = %(org)s AND end_user <> '' AND day >= %(first)s AND day < %(last)s
GROUP BY 2, 3, 4
"""

TABLES = ("billing_dailyenduserspend", "billing_dailysessionspend", "billing_dailyerrortype")


def week_of(day: date) -> date:
    """The Monday of `day`'s week (as PostgreSQL's date_trunc('week', …))."""
    return day - timedelta(days=day.weekday())


def rollup_days(organization_id: int, days: Iterable[date]) -> None:
    """Recompute these UTC days of the organization (replace, not add). Run inside the rollup's transaction."""
    days = sorted(set(days))
    if not days:
        return
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {table} WHERE organization_id = %s AND day = ANY(%s)",  # noqa: S608 (constant)
                           [organization_id, days])
        for day in days:
            start = datetime.combine(day, datetime.min.time(), UTC)
            params = {"org": organization_id, "day": day, "start": start, "end": start + timedelta(days=1)}
            cursor.execute(CALLERS_SQL, params)
            cursor.execute(SHARED_SESSIONS_SQL, params)
            cursor.execute(ERROR_TYPES_SQL, params)
        weeks = sorted({week_of(day) for day in days})
        cursor.execute("DELETE FROM billing_weeklyenduserspend WHERE organization_id = %s AND week = ANY(%s)",
                       [organization_id, weeks])
        for week in weeks:
            cursor.execute(WEEKLY_END_USERS_SQL, {"org": organization_id, "first": week, "last": week + timedelta(days=7)})
