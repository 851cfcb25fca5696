"""`observatory up --demo`'s traffic: posted through the real OTLP endpoint, every call stored and priced once,
the teams and budgets created, and the savings job finds the waste the workloads were given."""

import re
import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_fills_the_app_through_the_otlp_endpoint(live_server):
    from billing.models import Budget
    from billing.pricing.at_ingest import catalog_cache
    from billing.recommendations import generate
    from billing.services import load_default_catalog
    from ingest.models import LLMCall
    from observatory.demo import DEMO_BUDGETS, WORKLOADS, run_demo
    from observatory.models import Organization, Team

    load_default_catalog()
    catalog_cache.refresh(force=True)
    summary = run_demo(live_server.url, days=14)
    sent = int(re.match(r"([\d,]+) calls", summary)[1].replace(",", ""))
    org = Organization.objects.get(slug="default")
    deadline = time.monotonic() + 10  # an OTLP/HTTP trace export is stored right after the server's answer
    while LLMCall.objects.filter(organization=org).count() < sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert LLMCall.objects.filter(organization=org).count() == sent > 1000
    assert set(Team.objects.filter(organization=org).values_list("slug", flat=True)) == {w.team for w in WORKLOADS}
    assert LLMCall.objects.filter(organization=org, cost_status="unknown_model").count() == 0  # every demo model priced
    assert Budget.objects.filter(organization=org).count() == len(DEMO_BUDGETS)
    run_demo(live_server.url, days=1)  # a second run adds calls, not budgets
    assert Budget.objects.filter(organization=org).count() == len(DEMO_BUDGETS)
    kinds = {rec.kind for rec in generate(org.pk)}
    assert {"batch_api", "model_routing"} <= kinds  # nightly-batch runs in "batch"; query-rewrite is short gpt-4o calls
