"""Pricing + rollup throughput and dashboard query times over many calls (default 10M over 90 days, 50 teams).

    .venv/bin/python bench/rollup.py [--calls 10000000] [--days 90] [--teams 50]

Uses a throwaway embedded PostgreSQL (OBSERVATORY_HOME in /tmp) unless DATABASE_URL is set. Prints a
table and writes bench/results/rollup.json: calls priced per second (in-process pricing of call records),
calls rolled up per second, and for a 90-day range the spend-by-team and p99-by-model query times from
rollups vs exact SQL over raw rows, with the percentile error against exact.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


def generate(org_id: int, team_ids: list[int], calls: int, start: datetime, days: int, hashes: bool = False) -> float:
    """Insert `calls` synthetic calls in SQL. With `hashes`, calls also get request hashes (1 in 4 a repeat of an
    earlier request) and one of 20 prompt-prefix hashes, for the recommendation detectors."""
    from django.db import connection

    models_sql = "ARRAY[" + ",".join(f"'{m}'" for _, m in MODELS) + "]"
    providers_sql = "ARRAY[" + ",".join(f"'{p}'" for p, _ in MODELS) + "]"
    teams_sql = "ARRAY[" + ",".join(str(t) for t in team_ids) + "]"
    chunk = 1_000_000
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for offset in range(0, calls, chunk):
            n = min(chunk, calls - offset)
            cursor.execute(f"""
                INSERT INTO ingest_llmcall (organization_id, trace_id, span_id, start_time, duration_ms, ttft_ms, provider,
                    operation, request_model, response_model, input_tokens, cached_input_tokens, output_tokens, streaming,
                    status, team_id, environment, feature, cost_usd, cost_status, source, ingested_at, request_hash,
                    prompt_prefix_hash)
                SELECT %(org)s, md5(g::text), substr(md5(g::text || 's'), 1, 16),
                       %(start)s::timestamptz + (g::float8 / %(total)s) * %(span)s * interval '1 second',
                       exp(6.0 + m * 0.15 + 0.55 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random())),
                       CASE WHEN g %% 2 = 0 THEN exp(4.5 + m * 0.1 + 0.5 * sqrt(-2 * ln(random() + 1e-12)) * cos(2 * pi() * random())) END,
                       ({providers_sql})[m + 1], 'chat', ({models_sql})[m + 1], ({models_sql})[m + 1],
                       500 + (random() * 4000)::int, CASE WHEN g %% 3 = 0 THEN 256 ELSE 0 END, 20 + (random() * 600)::int,
                       g %% 2 = 0, CASE WHEN random() < 0.02 THEN 'error' ELSE 'ok' END, ({teams_sql})[1 + (g %% {len(team_ids)})],
                       'production', (ARRAY['answer', 'rewrite', 'triage'])[1 + (g %% 3)],
                       round((random() * 0.01)::numeric, 10), 'priced', 'bench', now(),
                       CASE WHEN %(hashes)s THEN md5((CASE WHEN g %% 4 = 0 THEN g / 4 ELSE g END)::text) ELSE '' END,
                       CASE WHEN %(hashes)s THEN 'prefix-' || (g %% 20) ELSE '' END
                FROM (SELECT g, (hashint4(g) & 2147483647) %% {len(MODELS)} AS m FROM generate_series(%(lo)s, %(hi)s) g) s
            """, {"org": org_id, "start": start, "total": calls, "span": days * 86400, "lo": offset + 1, "hi": offset + n,
                  "hashes": hashes})
            print(f"  generated {offset + n:,} calls", flush=True)
        cursor.execute("ANALYZE ingest_llmcall")
    return time.perf_counter() - began


def pricing_rate(sample: int = 200_000) -> float:
    from billing.pricing.at_ingest import catalog_cache, cost_of
    from billing.services import load_default_catalog
    from ingest.records import CallFields

    load_default_catalog()
    catalog_cache.refresh(force=True)
    rng = random.Random(4)
    now = datetime.now(UTC)
    calls = []
    for i in range(sample):
        provider, model = MODELS[i % len(MODELS)]
        calls.append(CallFields(trace_id="a" * 32, span_id="b" * 16, parent_span_id=None, start_time=now, duration_ms=1.0,
                                provider=provider, request_model=model, response_model=model,
                                input_tokens=rng.randint(500, 4500), cached_input_tokens=256 if i % 3 == 0 else 0,
                                output_tokens=rng.randint(20, 620)))
    began = time.perf_counter()
    for call in calls:
        cost_of(1, call, now)
    return sample / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--teams", type=int, default=50)
    args = parser.parse_args()
    setup_django()
    from billing import queries
    from billing.rollups import rollup_pending
    from ingest.partitions import ensure_partitions
    from observatory.access import Scope
    from observatory.models import Organization, Team

    org = Organization.objects.create(name=f"Bench {time.time_ns()}", slug=f"bench-{time.time_ns()}")
    teams = [Team.objects.create(organization=org, name=f"Team {i}", slug=f"team-{i}").id for i in range(args.teams)]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    ensure_partitions(days_ahead=1, days_back=args.days + 1)
    print(f"generating {args.calls:,} calls over {args.days} days for {args.teams} teams …", flush=True)
    generation_s = generate(org.id, teams, args.calls, start, args.days)

    price_rate = pricing_rate()
    print(f"pricing: {price_rate:,.0f} calls/s (in-process cost_of)", flush=True)
    began = time.perf_counter()
    rolled = rollup_pending()
    rollup_s = time.perf_counter() - began
    rollup_rate = args.calls / rollup_s
    combined = 1 / (1 / price_rate + 1 / rollup_rate)
    print(f"rollup: {args.calls:,} calls in {rollup_s:.1f} s = {rollup_rate:,.0f} calls/s ({rolled})", flush=True)

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
        "priced_and_rolled_calls_per_s": round(combined),
        "spend_by_team_90d_ms_rollup": round(spend_ms, 1), "spend_by_team_90d_ms_raw": round(raw_spend_ms, 1),
        "p50_p95_p99_by_model_90d_ms_rollup": round(p99_ms, 1), "p50_p95_p99_by_model_90d_ms_raw": round(raw_p99_ms, 1),
        "percentile_error_max": round(max(errors), 4), "percentile_error_mean": round(statistics.mean(errors), 4),
        "hourly_rollup_rows": rolled.get("rows"),
    }
    print(json.dumps(result, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rollup.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
