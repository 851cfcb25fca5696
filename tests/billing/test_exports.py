"""Cost exports: the chargeback and FOCUS tables add up to the month's calls to the cent, per team as the
rollup queries say, include GPU cost, and are scoped like the budget API."""

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import pytest
from django.contrib.auth import get_user_model

from billing import exports
from billing.models import GpuCostHour, GpuPool
from billing.queries import spend
from billing.rollups import rollup_pending
from ingest.models import LLMCall
from observatory.access import Scope
from observatory.models import Membership, Product, Role
from observatory.services import create_api_key

CHARGEBACK = "/api/v1/exports/chargeback"
FOCUS = "/api/v1/exports/focus"
MONTH_START, MONTH_END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
# (team: "team" | "other" | None, model, provider, day, hour, cost)
CALLS = [
    ("team", "gpt-4o-mini", "openai", 1, 0, "0.0012345678"),
    ("team", "gpt-4o-mini", "openai", 3, 10, "1.2500000001"),
    ("team", "claude-sonnet-4-5", "anthropic", 15, 23, "0.3300000000"),
    ("other", "gpt-4o-mini", "openai", 20, 5, "2.0000000009"),
    ("other", "claude-sonnet-4-5", "anthropic", 30, 23, "0.0700000007"),
    (None, "gpt-4o-mini", "openai", 12, 12, "0.0100000000"),
]
NEXT_MONTH_COST = Decimal("99.99")


def _user(org, role, team=None):
    user = get_user_model().objects.create_user(f"{role}-{team.slug if team else 'org'}", password="pw-123456!")
    Membership.objects.create(user=user, organization=org, team=team, role=role)
    return user


@pytest.fixture
def seeded(org, team, other_team):
    cart = Product.objects.create(organization=org, name="Cart", slug="cart", team=team)
    teams = {"team": team, "other": other_team, None: None}
    rows = []
    for n, (who, model, provider, day, hour, cost) in enumerate(CALLS, start=1):
        rows.append(LLMCall(
            organization=org, trace_id=f"{n:032x}", span_id=f"{n:016x}", start_time=datetime(2026, 11, day, hour, 30, tzinfo=UTC),
            duration_ms=500.0, provider=provider, operation="chat", request_model=model, response_model=model,
            team=teams[who], product=cart if who == "team" else None, environment="production", feature="answer",
            input_tokens=1000 + n, cached_input_tokens=100, output_tokens=50 + n, cost_usd=Decimal(cost),
            cost_status="priced",
        ))
    rows.append(LLMCall(
        organization=org, trace_id=f"{99:032x}", span_id=f"{99:016x}", start_time=datetime(2026, 12, 1, 0, 5, tzinfo=UTC),
        duration_ms=500.0, provider="openai", operation="chat", request_model="gpt-4o-mini", response_model="gpt-4o-mini",
        team=team, input_tokens=10, output_tokens=10, cost_usd=NEXT_MONTH_COST, cost_status="priced",
    ))
    LLMCall.objects.bulk_create(rows)
    rollup_pending()
    pool = GpuPool.objects.create(organization=org, name="a100", gpu_count=2, hourly_usd_per_gpu=Decimal("2.5"))
    hour = datetime(2026, 11, 10, 4, tzinfo=UTC)
    GpuCostHour.objects.create(organization=org, pool=pool, hour=hour, team=team, cost_usd=Decimal("3.0000000000"),
                               basis="tokens")
    GpuCostHour.objects.create(organization=org, pool=pool, hour=hour, team=other_team, cost_usd=Decimal("1.0000000000"),
                               basis="tokens")
    GpuCostHour.objects.create(organization=org, pool=pool, hour=hour, is_idle=True, cost_usd=Decimal("1.0000000000"),
                               basis="tokens")
    return {"team": team, "other": other_team, "cart": cart}


def _month_total() -> Decimal:
    return sum((Decimal(c[-1]) for c in CALLS), Decimal(0))


def _read(response, money) -> pd.DataFrame:
    assert response.status_code == 200, response.content
    return pd.read_csv(io.StringIO(response.content.decode()), dtype={c: str for c in money}, keep_default_na=False)


def _sum(column) -> Decimal:
    return sum((Decimal(v) for v in column), Decimal(0))


@pytest.mark.django_db
def test_chargeback_csv_adds_up_to_the_months_calls_and_to_spend_per_team(client, org, seeded):
    client.force_login(_user(org, Role.VIEWER))
    response = client.get(CHARGEBACK, {"month": "2026-11", "format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="chargeback-2026-11.csv"' in response["Content-Disposition"]
    frame = _read(response, exports.CHARGEBACK_MONEY)
    assert list(frame.columns) == list(exports.CHARGEBACK_COLUMNS)
    assert _sum(frame["cost_usd"]) == _month_total()  # the December call is left out
    per_team = {row["team_id"]: row["cost_usd"] for row in spend(Scope(org.id), MONTH_START, MONTH_END, ["team"])}
    slugs = {seeded["team"].id: "search", seeded["other"].id: "ads", None: ""}
    for team_id, cost in per_team.items():
        assert _sum(frame.loc[frame["team"] == slugs[team_id], "cost_usd"]) == cost
    usage = frame[frame["model"] != ""]
    assert len(usage) == 5  # search×cart×2 models, ads×2 models, unattributed×1
    assert set(usage.loc[usage["team"] == "search", "product"]) == {"cart"}
    assert usage["calls"].sum() == len(CALLS)


@pytest.mark.django_db
def test_chargeback_carries_gpu_cost_and_the_idle_share(org, seeded):
    frame = exports.chargeback(Scope(org.id), datetime(2026, 11, 1).date())
    gpu = frame[frame["gpu_cost_usd"] != 0].set_index("team")
    assert gpu.loc["search", "gpu_cost_usd"] == Decimal(3) and gpu.loc["ads", "gpu_cost_usd"] == Decimal(1)
    assert gpu.loc["search", "idle_gpu_usd"] == Decimal("0.75") and gpu.loc["ads", "idle_gpu_usd"] == Decimal("0.25")
    assert gpu.loc["search", "model"] == "" and gpu.loc["search", "cost_usd"] == 0
    assert sum(frame["total_usd"], Decimal(0)) == _month_total() + Decimal(5)
    assert exports.chargeback(Scope(org.id), datetime(2026, 10, 1).date()).empty


@pytest.mark.django_db
def test_chargeback_xlsx_opens_in_pandas_and_matches_the_dashboard_to_the_cent(client, org, seeded):
    user = _user(org, Role.ADMIN)
    client.force_login(user)
    response = client.get(CHARGEBACK, {"month": "2026-11", "format": "xlsx"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert 'filename="chargeback-2026-11.xlsx"' in response["Content-Disposition"]
    frame = pd.read_excel(io.BytesIO(response.content), sheet_name="chargeback 2026-11", keep_default_na=False)
    assert list(frame.columns) == list(exports.CHARGEBACK_COLUMNS)
    assert len(frame) == 7  # 5 usage rows + 2 GPU rows
    # the overview page for November shows the same LLM spend, to the cent
    page = client.get("/", {"range": "custom", "start": "2026-11-01", "end": "2026-11-30"})
    shown = page.context["report"].total["cost_usd"]
    assert round(frame["cost_usd"].sum(), 2) == float(shown.quantize(Decimal("0.01"))) == float(
        _month_total().quantize(Decimal("0.01")))
    # and the cells hold the exact decimals: 1.2500000001 is not rounded away
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet[1]]
    cost = [Decimal(str(row[header.index("cost_usd")])) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert sum(cost, Decimal(0)) == _month_total()
    assert sheet.cell(row=2, column=header.index("cost_usd") + 1).number_format.startswith('"$"')


@pytest.mark.django_db
def test_focus_xlsx_adds_up(client, org, seeded):
    client.force_login(_user(org, Role.ADMIN))
    response = client.get(FOCUS, {"month": "2026-11", "format": "xlsx"})
    assert response.status_code == 200, response.content
    frame = pd.read_excel(io.BytesIO(response.content), keep_default_na=False)
    assert list(frame.columns) == list(exports.FOCUS_COLUMNS)
    assert round(frame["BilledCost"].sum(), 2) == float(_month_total().quantize(Decimal("0.01")))
    assert frame["x_Calls"].sum() == len(CALLS)


@pytest.mark.django_db
def test_chargeback_json_has_decimal_strings(client, org, seeded):
    client.force_login(_user(org, Role.VIEWER))
    response = client.get(CHARGEBACK, {"month": "2026-11", "format": "json"})
    assert response.status_code == 200, response.content
    rows = response.json()["rows"]
    assert all(isinstance(row["cost_usd"], str) and isinstance(row["calls"], int) for row in rows)
    assert sum((Decimal(row["cost_usd"]) for row in rows), Decimal(0)) == _month_total()


@pytest.mark.django_db
def test_focus_csv_has_the_focus_columns_and_adds_up(client, org, seeded):
    client.force_login(_user(org, Role.ADMIN))
    response = client.get(FOCUS, {"month": "2026-11", "format": "csv"})
    assert 'filename="focus-2026-11.csv"' in response["Content-Disposition"]
    frame = _read(response, exports.FOCUS_MONEY)
    required = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "BilledCost",
                "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "ChargeCategory", "ChargeDescription",
                "ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
                "ServiceName", "ServiceCategory", "ResourceId", "Tags", "SubAccountId"}
    assert required <= set(frame.columns)
    assert _sum(frame["BilledCost"]) == _month_total() == _sum(frame["EffectiveCost"])
    assert set(frame["BillingCurrency"]) == {"USD"} and set(frame["ChargeCategory"]) == {"Usage"}
    assert set(frame["ServiceCategory"]) == {"AI and Machine Learning"}
    assert set(frame["BillingPeriodStart"]) == {"2026-11-01T00:00:00Z"}
    assert set(frame["BillingPeriodEnd"]) == {"2026-12-01T00:00:00Z"}
    assert len(frame) == len(CALLS) and "2026-11-30T00:00:00Z" in set(frame["ChargePeriodStart"])
    first = frame[frame["ChargePeriodStart"] == "2026-11-01T00:00:00Z"].iloc[0]
    assert first["ChargePeriodEnd"] == "2026-11-02T00:00:00Z" and first["SubAccountId"] == "search"
    assert first["ServiceName"] == "gpt-4o-mini" and first["ProviderName"] == "openai"
    assert first["ConsumedQuantity"] == 1001 + 51
    assert json.loads(first["Tags"]) == {"team": "search", "product": "cart", "environment": "production",
                                         "feature": "answer"}


@pytest.mark.django_db
def test_a_team_member_gets_only_their_teams_rows(client, org, seeded):
    client.force_login(_user(org, Role.VIEWER, seeded["other"]))
    chargeback = _read(client.get(CHARGEBACK, {"month": "2026-11"}), exports.CHARGEBACK_MONEY)
    assert set(chargeback["team"]) == {"ads"}
    assert _sum(chargeback["cost_usd"]) == Decimal("2.0700000016")
    ads_gpu = chargeback[chargeback["model"] == ""].iloc[0]
    assert Decimal(ads_gpu["gpu_cost_usd"]) == 1 and Decimal(ads_gpu["idle_gpu_usd"]) == Decimal("0.25")
    focus = _read(client.get(FOCUS, {"month": "2026-11", "format": "csv"}), exports.FOCUS_MONEY)
    assert set(focus["SubAccountId"]) == {"ads"} and _sum(focus["BilledCost"]) == Decimal("2.0700000016")


@pytest.mark.django_db
def test_an_api_key_without_a_team_exports_its_whole_organization(client, org, seeded):
    key = create_api_key(org, "ci").plaintext
    response = client.get(CHARGEBACK, {"month": "2026-11"}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert _sum(_read(response, exports.CHARGEBACK_MONEY)["cost_usd"]) == _month_total()


@pytest.mark.django_db
def test_a_team_key_exports_its_team_only(client, org, seeded):
    key = create_api_key(org, "ci", team=seeded["team"]).plaintext
    response = client.get(CHARGEBACK, {"month": "2026-11"}, HTTP_AUTHORIZATION=f"Bearer {key}")
    rows = _read(response, exports.CHARGEBACK_MONEY)
    search_calls = sum((Decimal(c[-1]) for c in CALLS if c[0] == "team"), Decimal(0))
    assert set(rows["team"]) == {"search"}
    assert _sum(rows["cost_usd"]) == search_calls


@pytest.mark.django_db
@pytest.mark.parametrize("month", ["2026-13", "nov", "", "2026-1", "2026-11-01"])
@pytest.mark.parametrize("url", [CHARGEBACK, FOCUS])
def test_a_bad_month_is_a_400_with_a_message(client, org, team, url, month):
    client.force_login(_user(org, Role.VIEWER))
    response = client.get(url, {"month": month})
    assert response.status_code == 400
    assert "YYYY-MM" in response.json()["detail"]


@pytest.mark.django_db
def test_a_bad_format_is_a_400(client, org):
    client.force_login(_user(org, Role.VIEWER))
    response = client.get(CHARGEBACK, {"month": "2026-11", "format": "pdf"})
    assert response.status_code == 400 and "csv, xlsx or json" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [CHARGEBACK, FOCUS])
def test_unauthenticated_requests_are_refused(client, org, url):
    assert client.get(url, {"month": "2026-11"}).status_code in (401, 403)


@pytest.mark.django_db
def test_someone_in_no_organization_is_refused(client, org):
    client.force_login(get_user_model().objects.create_user("nobody", password="pw-123456!"))
    assert client.get(CHARGEBACK, {"month": "2026-11"}).status_code == 403
