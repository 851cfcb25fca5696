"""The savings pages in a real browser: read a recommendation, dismiss it with a reason, find it under "Dismissed";
change a what-if figure and see the monthly cost update in place; download the chargeback workbook."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.db.models import Sum
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def dollars(text: str) -> Decimal:
    return Decimal(re.sub(r"[^0-9.]", "", text.split("/")[0]))


def test_a_recommendation_is_dismissed_with_a_reason(signed_in, live_server, month, screenshot):
    from billing.models import Recommendation
    from billing.recommendations import generate

    found = generate(month.organization.pk)
    assert found, "two months of traffic with errors should yield at least the failed-call recommendation"
    biggest = Recommendation.objects.filter(organization=month.organization).order_by("-monthly_savings_usd", "id").first()
    page = signed_in
    page.click("nav.nav a[href^='/recommendations/']")
    page.wait_for_url(re.compile(r"/recommendations/"))
    card = page.locator(f"#rec-{biggest.id}")
    assert card.locator("h2").inner_text() == biggest.title
    assert dollars(page.locator(f"[data-testid=rec-saving-{biggest.id}]").inner_text()) == biggest.monthly_savings_usd.quantize(
        Decimal("0.01"))
    total = Recommendation.objects.filter(organization=month.organization, status="open").aggregate(s=Sum("monthly_savings_usd"))["s"]
    assert dollars(page.locator("[data-testid=open-savings]").inner_text()) == total.quantize(Decimal("0.01"))
    first, last = biggest.data_start, biggest.data_end - timedelta(microseconds=1)
    assert page.locator(f"[data-testid=rec-basis-{biggest.id}]").inner_text() == (
        f"Monthly figure {biggest.basis}")
    days = "of pool hours" if biggest.scaled_by_pool_hours else "with data"
    assert biggest.basis.endswith(f" {days}, {first:%b %-d} – {last:%b %-d}")
    assert page.locator("[data-testid=savings-baseline-basis]").inner_text().startswith("based on ")
    screenshot("recommendations")

    card.locator("summary").click()
    assert card.locator("table").is_visible()
    card.locator("form.dismiss input[name=reason]").fill("quality first on this one")
    card.locator("form.dismiss button").click()
    page.wait_for_selector(".messages >> text=is dismissed")
    assert page.locator(f"#rec-{biggest.id}").count() == 0
    biggest.refresh_from_db()
    assert (biggest.status, biggest.dismissed_reason) == ("dismissed", "quality first on this one")

    page.select_option("#rec-filters select[name=status]", "dismissed")
    page.wait_for_url(re.compile(r"status=dismissed"))
    assert "quality first on this one" in page.locator(f"#rec-{biggest.id}").inner_text()


def test_what_if_updates_in_place(signed_in, screenshot):
    page = signed_in
    page.click("nav.nav a[href^='/what-if/']")
    page.wait_for_url(re.compile(r"/what-if/"))
    baseline = dollars(page.locator("[data-testid=what-if-baseline]").inner_text())
    assert baseline > 0
    page.evaluate("window.notReloaded = true")
    page.fill("input[name=cache_hit_rate]", "25")
    page.locator("input[name=cache_hit_rate]").dispatch_event("change")
    page.wait_for_url(re.compile(r"cache_hit_rate=25"))
    page.wait_for_selector("#what-if-steps")
    new = dollars(page.locator("[data-testid=what-if-new]").inner_text())
    assert abs(new - baseline * Decimal("0.75")) <= Decimal("0.01")
    assert page.evaluate("window.notReloaded") is True
    screenshot("what-if")


def test_the_chargeback_workbook_matches_the_months_calls(signed_in, month):
    from ingest.models import LLMCall

    page = signed_in
    page.click("nav.nav a[href^='/recommendations/']")
    now = timezone.now()
    page.select_option("#exports select[name=month]", f"{now:%Y-%m}")
    with page.expect_download() as download:
        page.click("[data-testid=export-chargeback-xlsx]")
    assert download.value.suggested_filename == f"chargeback-{now:%Y-%m}.xlsx"
    frame = pd.read_excel(io.BytesIO(download.value.path().read_bytes()))
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    expected = LLMCall.objects.filter(organization=month.organization, start_time__gte=start).aggregate(c=Sum("cost_usd"))["c"]
    assert round(Decimal(str(frame["cost_usd"].sum())), 2) == expected.quantize(Decimal("0.01"))
