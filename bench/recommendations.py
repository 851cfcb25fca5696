"""Time of the nightly savings-recommendation job over many calls (default 10M over 90 days, 50 teams; the job
reads the last 30 days, ~3.3M calls).

    .venv/bin/python bench/recommendations.py [--calls 10000000] [--days 90] [--teams 50]

Generates the calls in SQL (as bench/rollup.py does, with request and prompt-prefix hashes so the caching
detectors have work), loads the price catalog, then times each detector on its own (median of 3 after a
warm-up) and one full generate() (which also writes the rows). Prints a table and writes
bench/results/recommendations.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("rollup_bench", Path(__file__).with_name("rollup.py"))
rollup_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rollup_bench)


def median_ms(fn, repeat: int = 3) -> tuple[float, object]:
    result = fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--teams", type=int, default=50)
    args = parser.parse_args()
    rollup_bench.setup_django()
    from billing.pricing.at_ingest import catalog_cache
    from billing.recommendations import DETECTORS, generate, window_of
    from billing.services import load_default_catalog
    from ingest.partitions import ensure_partitions
    from observatory.models import Organization, Team

    org = Organization.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    teams = [Team.objects.create(organization=org, name=f"Team {i}", slug=f"team-{i}") for i in range(args.teams)]
    now = datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    ensure_partitions(days_ahead=1, days_back=args.days + 1)
    print(f"generating {args.calls:,} calls …", flush=True)
    rollup_bench.generate(org.id, [t.id for t in teams], args.calls, end - timedelta(days=args.days), args.days, hashes=True)
    load_default_catalog()
    catalog_cache.refresh(force=True)
    window = window_of(org.id, now)
    in_window = window.calls.count()
    results = {"calls": args.calls, "days": args.days, "teams": args.teams, "calls_in_window": in_window, "detectors": {}}
    print(f"{in_window:,} calls in the 30-day window\n{'detector':<24}{'ms':>10}{'findings':>10}")
    for detector in DETECTORS:
        ms, findings = median_ms(lambda detector=detector: detector(window))
        results["detectors"][detector.__name__] = {"ms": round(ms, 1), "findings": len(findings)}
        print(f"{detector.__name__:<24}{ms:>10.0f}{len(findings):>10}", flush=True)
    began = time.perf_counter()
    recs = generate(org.id, now=now)
    total = (time.perf_counter() - began) * 1000
    results["generate_ms"] = round(total, 1)
    results["recommendations"] = len(recs)
    results["calls_per_second"] = round(in_window / (total / 1000))
    print(f"{'generate() in all':<24}{total:>10.0f}{len(recs):>10}")
    print(f"→ {results['calls_per_second']:,} calls/s over the window")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "recommendations.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
