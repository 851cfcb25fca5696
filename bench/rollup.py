"""Pricing + rollup throughput and dashboard query times over many calls (default 10M over 90 days, 50 teams).

    .venv/bin/python bench/rollup.py [--calls 10000000] [--days 90] [--teams 50]

Uses a throwaway embedded PostgreSQL (OBSERVATORY_HOME in /tmp) unless DATABASE_URL is set. Prints a
table and writes bench/results/rollup-<UTC start>.json (with the machine and its load): in one measured run, every
call priced in-process from its stored record and then every call rolled up (priced, rolled and priced + rolled
calls per second), and for a 90-day range the spend-by-team and p99-by-model query times from
rollups vs exact SQL over raw rows, with the percentile error against exact.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("openai", "gpt-4.1"), ("openai", "o4-mini"),
          ("openai", "text-embedding-3-small"), ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5"),
          ("openai", "gpt-5-mini"), ("openai", "gpt-5"), ("anthropic", "claude-opus-4-5")]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("OBSERVATORY_HOME", tempfile.mkdtemp(prefix="obs-rollup-bench-"))
        from observatory.config import load_config
        from observatory.embedded_db import database_url, ensure_postgres

        server = ensure_postgres(load_config().data_dir / "pgdata", database="observatory")
        os.environ["DATABASE_URL"] = database_url(server, "observatory")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), result


PRODUCTS_PER_TEAM = 2
FEATURES_PER_PRODUCT = 4
USERS_PER_TEAM = 100
ERRORS = [("rate_limit_error", 429), ("timeout", None), ("server_error", 500), ("context_length_exceeded", 400),
          ("invalid_request_error", 400)]


def make_products(organization, teams: list) -> list[int]:
    """PRODUCTS_PER_TEAM products per team, in team order (the ids generate() picks from)."""
    from observatory.models import Product

    return [Product.objects.create(organization=organization, team=team, name=f"{team.name} app {i}",
                                   slug=f"{team.slug}-app-{i}").id
            for team in teams for i in range(PRODUCTS_PER_TEAM)]


def generate(org_id: int, team_ids: list[int], calls: int, start: datetime, days: int, hashes: bool = False,
             product_ids: list[int] | None = None) -> float:
    """Insert `calls` synthetic calls in SQL, shaped like a real organization's: call g belongs to team g mod teams;
    each team has PRODUCTS_PER_TEAM products (`product_ids`, in team order; none without them), each product
    FEATURES_PER_PRODUCT features, each feature a main model (9 calls in 10) and any other model; a team's
    USERS_PER_TEAM end users (skewed: a few heavy ones) name 4 calls in 5, and each user has one session per UTC day;
    2% of calls fail with one of ERRORS. With `hashes`, calls also get request hashes (1 in 4 a repeat of an earlier
    request) and one of 20 prompt-prefix hashes, for the recommendation detectors."""
    from django.db import connection

    models_sql = "ARRAY[" + ",".join(f"'{m}'" for _, m in MODELS) + "]"
    providers_sql = "ARRAY[" + ",".join(f"'{p}'" for p, _ in MODELS) + "]"
    teams_sql = "ARRAY[" + ",".join(str(t) for t in team_ids) + "]"
    products_sql = "ARRAY[" + ",".join(str(p) for p in product_ids) + "]::bigint[]" if product_ids else "ARRAY[]::bigint[]"
    error_types_sql = "ARRAY[" + ",".join(f"'{e}'" for e, _ in ERRORS) + "]"
    error_statuses_sql = "ARRAY[" + ",".join("NULL" if s is None else str(s) for _, s in ERRORS) + "]::smallint[]"
    chunk = 1_000_000
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for offset in range(0, calls, chunk):
            n = min(chunk, calls - offset)
            cursor.execute(f"""
                INSERT INTO ingest_llmcall (organization_id, trace_id, span_id, start_time, duration_ms, ttft_ms, provider,
                    operation, request_model, response_model, model, input_tokens, cached_input_tokens, output_tokens,
                    streaming, status, error_type, http_status, team_id, product_id, environment, feature, end_user,
                    session, cost_usd, cost_status, source, ingested_at, request_hash, prompt_prefix_hash)
                SELECT %(org)s, md5(g::text), substr(md5(g::text || 's'), 1, 16), at,
                       exp(6.0 + m * 0.15 + 0.55 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random())),
                       CASE WHEN g %% 2 = 0 THEN exp(4.5 + m * 0.1 + 0.5 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random())) END,
                       ({providers_sql})[m + 1], 'chat', ({models_sql})[m + 1], ({models_sql})[m + 1], ({models_sql})[m + 1],
                       500 + (random() * 4000)::int, CASE WHEN g %% 3 = 0 THEN 256 ELSE 0 END, 20 + (random() * 600)::int,
                       g %% 2 = 0, CASE WHEN e > 0 THEN 'error' ELSE 'ok' END,
                       CASE WHEN e > 0 THEN ({error_types_sql})[e] ELSE '' END,
                       CASE WHEN e > 0 THEN ({error_statuses_sql})[e] END,
                       ({teams_sql})[t + 1], ({products_sql})[p + 1],
                       CASE WHEN g %% 20 = 7 THEN 'staging' ELSE 'production' END, 'feature-' || f,
                       CASE WHEN u >= 0 THEN 'user-' || t || '-' || u ELSE '' END,
                       CASE WHEN u >= 0 THEN 'session-' || t || '-' || u || '-' || (extract(epoch FROM at)::bigint / 86400)
                            ELSE '' END,
                       round((random() * 0.01)::numeric, 10), 'priced', 'bench', now(),
                       CASE WHEN %(hashes)s THEN md5((CASE WHEN g %% 4 = 0 THEN g / 4 ELSE g END)::text) ELSE '' END,
                       CASE WHEN %(hashes)s THEN 'prefix-' || (g %% 20) ELSE '' END
                FROM (
                    SELECT g, t, p, f, at,
                           CASE WHEN h %% 10 = 0 THEN (h / 10) %% {len(MODELS)} ELSE f %% {len(MODELS)} END AS m,
                           CASE WHEN (h / 1000) %% 5 = 0 THEN -1 ELSE floor({USERS_PER_TEAM} * random() ^ 2)::int END AS u,
                           CASE WHEN random() < 0.02 THEN 1 + floor(random() * {len(ERRORS)})::int ELSE 0 END AS e
                    FROM (
                        SELECT g, h, g %% {len(team_ids)} AS t,
                               (g %% {len(team_ids)}) * {PRODUCTS_PER_TEAM} + (h / 7) %% {PRODUCTS_PER_TEAM} AS p,
                               ((g %% {len(team_ids)}) * {PRODUCTS_PER_TEAM} + (h / 7) %% {PRODUCTS_PER_TEAM})
                                   * {FEATURES_PER_PRODUCT} + (h / 31) %% {FEATURES_PER_PRODUCT} AS f,
                               %(start)s::timestamptz + (g::float8 / %(total)s) * %(span)s * interval '1 second' AS at
                        FROM (SELECT g, hashint4(g) & 2147483647 AS h FROM generate_series(%(lo)s, %(hi)s) g) s
                    ) s
                ) s
            """, {"org": org_id, "start": start, "total": calls, "span": days * 86400, "lo": offset + 1, "hi": offset + n,
                  "hashes": hashes})
            print(f"  generated {offset + n:,} calls", flush=True)
        cursor.execute("ANALYZE ingest_llmcall")
    return time.perf_counter() - began


def machine() -> dict:
    """The machine a result was measured on, for bench/results/."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu_model": model, "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "python_loop_ms": python_loop_ms()}


def python_loop_ms(count: int = 5_000_000) -> float:
    """How long this machine takes for `count` additions in a Python loop (best of 3): the same CPU model name can run
    at very different speeds from one virtual machine, or one hour, to the next, so results say how fast it was."""
    best = float("inf")
    for _ in range(3):
        began, total = time.perf_counter(), 0
        for number in range(count):
            total += number
        best = min(best, time.perf_counter() - began)
    return round(best * 1000, 1)


def write_result(name: str, result: dict, started: datetime, load_at_start: list[float]) -> Path:
    """bench/results/<name>-<UTC start>.json with the command line and the machine (load at start and end)."""
    described = machine()
    described["load_average_at_start"] = load_at_start
    described["load_average_at_end"] = described.pop("load_average")
    stamp = started.strftime("%Y%m%dT%H%MZ")
    out = REPO / "bench" / "results" / f"{name}-{stamp}.json"
    copy = 2
    while out.exists():  # two runs started in the same minute keep both results
        out = out.with_name(f"{name}-{stamp}-{copy}.json")
        copy += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    command = "python " + " ".join([f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    out.write_text(json.dumps({"command": command, "started_utc": stamp, **result, "machine": described}, indent=2) + "\n")
    return out


def price_stored_calls(org_id: int, page: int = 50_000) -> int:
    """Price every stored call of the organization in-process (cost_of on its record, as ingest does), read in pages.
    Returns the number priced."""
    from django.db import connection

    from billing.pricing.at_ingest import cost_of
    from ingest.records import CallFields

    priced = 0
    with connection.cursor() as cursor:
        cursor.execute("DECLARE bench_calls NO SCROLL CURSOR WITH HOLD FOR SELECT start_time, duration_ms, provider, "
                       "request_model, response_model, input_tokens, cached_input_tokens, output_tokens, status "
                       "FROM ingest_llmcall WHERE organization_id = %s", [org_id])
        try:
            while True:
                cursor.execute(f"FETCH {page} FROM bench_calls")
                rows = cursor.fetchall()
                if not rows:
                    break
                for when, duration, provider, request_model, response_model, tokens_in, cached, tokens_out, status in rows:
                    cost_of(org_id, CallFields(trace_id="", span_id="", parent_span_id=None, start_time=when,
                                               duration_ms=duration, provider=provider, request_model=request_model,
                                               response_model=response_model, input_tokens=tokens_in,
                                               cached_input_tokens=cached, output_tokens=tokens_out,
                                               usage_reported=True, status=status), when)
                priced += len(rows)
        finally:
            cursor.execute("CLOSE bench_calls")
    return priced


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--teams", type=int, default=50)
    args = parser.parse_args()
    started, load_at_start = datetime.now(UTC), [round(x, 2) for x in os.getloadavg()]
    setup_django()
    from billing import queries
    from billing.pricing.at_ingest import catalog_cache
    from billing.rollups import rollup_pending
    from billing.services import load_default_catalog
    from ingest.partitions import ensure_partitions
    from observatory.access import Scope
    from observatory.models import Organization, Team

    org = Organization.objects.create(name=f"Bench {time.time_ns()}", slug=f"bench-{time.time_ns()}")
    team_rows = [Team.objects.create(organization=org, name=f"Team {i}", slug=f"team-{i}") for i in range(args.teams)]
    teams = [t.id for t in team_rows]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    ensure_partitions(days_ahead=1, days_back=args.days + 1)
    print(f"generating {args.calls:,} calls over {args.days} days for {args.teams} teams …", flush=True)
    generation_s = generate(org.id, teams, args.calls, start, args.days, product_ids=make_products(org, team_rows))

    load_default_catalog()
    catalog_cache.refresh(force=True)
    # one end-to-end run: every call priced in-process from its stored record (read in pages), then every call rolled up
    began = time.perf_counter()
    priced = price_stored_calls(org.id)
    pricing_s = time.perf_counter() - began
    rolled = rollup_pending()
    total_s = time.perf_counter() - began
    rollup_s = total_s - pricing_s
    price_rate, rollup_rate, combined = priced / pricing_s, args.calls / rollup_s, args.calls / total_s
    print(f"pricing: {priced:,} calls in {pricing_s:.1f} s = {price_rate:,.0f} calls/s (reading them included)", flush=True)
    print(f"rollup: {args.calls:,} calls in {rollup_s:.1f} s = {rollup_rate:,.0f} calls/s ({rolled})", flush=True)
    print(f"priced + rolled: {args.calls:,} calls in {total_s:.1f} s = {combined:,.0f} calls/s", flush=True)

    scope = Scope(org.id)
    from django.db import connection

    def raw_spend():
        with connection.cursor() as c:
            c.execute("SELECT team_id, sum(cost_usd) FROM ingest_llmcall WHERE organization_id = %s AND start_time >= %s "
                      "AND start_time < %s GROUP BY team_id", [org.id, start, end])
            return dict(c.fetchall())

    def raw_p99():
        with connection.cursor() as c:
            c.execute("SELECT response_model, percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) "
                      "FROM ingest_llmcall WHERE organization_id = %s AND start_time >= %s AND start_time < %s "
                      "GROUP BY response_model", [org.id, start, end])
            return {model: values for model, values in c.fetchall()}

    spend_ms, spend_rows = timed(lambda: queries.spend(scope, start, end, ["team"]))
    p99_ms, p_rows = timed(lambda: queries.percentiles(scope, start, end, ["model"]))
    raw_spend_ms, raw_spend_rows = timed(raw_spend, repeat=2)
    raw_p99_ms, exact = timed(raw_p99, repeat=2)
    assert {r["team_id"]: r["cost_usd"] for r in spend_rows} == raw_spend_rows, "rollup spend differs from raw"
    errors = []
    for row in p_rows:
        for q, value in zip(("p50", "p95", "p99"), exact[row["model"]], strict=True):
            errors.append(abs(row[q] - value) / value)
    result = {
        "calls": args.calls, "days": args.days, "teams": args.teams, "generation_s": round(generation_s, 1),
        "priced_calls_per_s": round(price_rate), "rolled_up_calls_per_s": round(rollup_rate),
        "priced_and_rolled_calls_per_s": round(combined), "priced_and_rolled_s": round(total_s, 1),
        "spend_by_team_90d_ms_rollup": round(spend_ms, 1), "spend_by_team_90d_ms_raw": round(raw_spend_ms, 1),
        "p50_p95_p99_by_model_90d_ms_rollup": round(p99_ms, 1), "p50_p95_p99_by_model_90d_ms_raw": round(raw_p99_ms, 1),
        "percentile_error_max": round(max(errors), 4), "percentile_error_mean": round(statistics.mean(errors), 4),
        "hourly_rollup_rows": rolled.get("rows"),
    }
    print(json.dumps(result, indent=2))
    print(f"wrote {write_result('rollup', result, started, load_at_start)}")


if __name__ == "__main__":
    main()
