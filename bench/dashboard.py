"""Server time of each dashboard page over many calls (default 10M over 90 days, 50 teams).

    .venv/bin/python bench/dashboard.py [--calls 10000000] [--days 90] [--teams 50] [--reuse]

Generates the calls in SQL (as bench/rollup.py does), rolls them up, then requests every page in-process
with Django's test client as an org-wide admin and as a one-team viewer, for the 30-day and 7-day ranges
(median of 5 after a warm-up). The calls have products, features, end users, sessions and error types
(rollup_bench.generate). Prints a table and writes bench/results/dashboard-<UTC start>.json with the machine and
its load.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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


def page_ms(client, url: str, repeat: int = 5) -> tuple[float, int]:
    response = client.get(url)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), response.status_code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--reuse", action="store_true",
                        help="time the calls an earlier run left in this OBSERVATORY_HOME (after rolling up whatever is "
                             "pending, e.g. what a migration asked for) instead of generating new ones")
    args = parser.parse_args()
    started, load_at_start = datetime.now(UTC), [round(x, 2) for x in os.getloadavg()]
    rollup_bench.setup_django()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from billing.rollups import rollup_pending
    from ingest.models import LLMCall
    from ingest.partitions import ensure_partitions
    from observatory.models import Membership, Organization, Role, Team

    if args.reuse:  # the calls of an earlier run in this OBSERVATORY_HOME: roll up what migrations asked for
        org = Organization.objects.filter(slug__startswith="bench-").order_by("-id").first()
        teams = list(Team.objects.filter(organization=org).order_by("id"))
        args.calls, generation_s = LLMCall.objects.filter(organization=org).count(), None
        print(f"reusing {org.slug}: {args.calls:,} calls", flush=True)
    else:
        org = Organization.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
        teams = [Team.objects.create(organization=org, name=f"Team {i}", slug=f"team-{i}") for i in range(args.teams)]
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        ensure_partitions(days_ahead=1, days_back=args.days + 1)
        print(f"generating {args.calls:,} calls …", flush=True)
        generation_s = rollup_bench.generate(org.id, [t.id for t in teams], args.calls, end - timedelta(days=args.days),
                                             args.days, product_ids=rollup_bench.make_products(org, teams))
    print("rolling up …", flush=True)
    began = time.perf_counter()
    rollup_pending()
    rollup_s = time.perf_counter() - began

    User = get_user_model()
    suffix = f"{org.slug}-{time.time_ns()}"
    admin = User.objects.create_user(f"admin-{suffix}", password="x")
    Membership.objects.create(user=admin, organization=org, team=None, role=Role.ADMIN)
    viewer = User.objects.create_user(f"viewer-{suffix}", password="x")
    Membership.objects.create(user=viewer, organization=org, team=teams[0], role=Role.VIEWER)
    call = LLMCall.objects.filter(organization=org, team=teams[0]).order_by("-start_time").first()
    pages = ["/", f"/teams/{teams[0].slug}/", "/latency/", "/caching/", "/errors/", "/calls/",
             f"/calls/{call.trace_id}/{call.span_id}/", "/prices/", "/gpu/", "/settings/", "/recommendations/", "/users/",
             "/users/?by=session", "/models/", "/what-if/"]
    results = {}
    for who, user in (("admin", admin), ("viewer", viewer)):
        client = Client()
        client.force_login(user)
        for window in ("30d", "7d"):
            for page in pages:
                ms, status = page_ms(client, f"{page}{'&' if '?' in page else '?'}range={window}")
                results[f"{who} {window} {page if 'calls/' not in page[7:] else '/calls/<id>/'}"] = {
                    "ms": round(ms, 1), "status": status}
                print(f"{who:6} {window:3} {page[:40]:40} {ms:8.1f} ms  ({status})", flush=True)
    slowest = max(results.values(), key=lambda r: r["ms"])
    out = {"calls": args.calls, "days": args.days, "teams": len(teams), "reused_calls": args.reuse,
           "generation_s": generation_s and round(generation_s, 1),
           "rollup_s": round(rollup_s, 1), "pages": results, "slowest_ms": slowest["ms"]}
    print(f"slowest page: {slowest['ms']} ms")
    print(f"wrote {rollup_bench.write_result('dashboard', out, started, load_at_start)}")


if __name__ == "__main__":
    main()
