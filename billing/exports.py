"""Cost exports for finance: a monthly chargeback table and a FinOps FOCUS 1.x-shaped usage table.

Both read the rollups (never raw calls) through `billing.queries`, so they obey the same `Scope` as the dashboard
and the API, and both cover one calendar month in UTC: [first day 00:00, first day of next month 00:00).

Money stays `Decimal` throughout; `to_csv` / `to_records` write it as plain decimal strings (never floats) and
`to_xlsx` as exact decimal numbers (openpyxl writes a Decimal's digits as they are) with a currency format.

Chargeback rows
    One row per team × product × provider × model with the month's calls, tokens by class and `cost_usd`
    (`gpu_cost_usd` and `idle_gpu_usd` are 0 on these rows). GPU cost is not spread over models: each team with
    self-hosted GPU cost in the month gets one extra row with product, provider and model empty, carrying
    `gpu_cost_usd` (its `GpuCostHour` shares) and `idle_gpu_usd`: the organization's idle GPU cost in the month,
    allocated to teams (and to unattributed GPU use, team "") in proportion to their non-idle GPU cost. The
    allocation always uses organization-wide totals, so a team sees the same share whoever asks; a requester
    limited to some teams sees only their rows. `total_usd` = cost_usd + gpu_cost_usd + idle_gpu_usd.
    Teams and products are slugs; "" means unattributed.

FOCUS rows
    One row per day × team × product × provider × model × environment × feature from the daily rollups, with the
    FOCUS 1.x columns below plus `x_`-prefixed custom columns (FOCUS's convention) for the token breakdown.
    All four cost columns equal our computed cost (we hold no separate list or contracted price). Only LLM usage
    is exported; GPU pool cost is in the chargeback export.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
from django.db.models import Sum

from billing.models import GpuCostHour
from billing.queries import spend, timeseries
from observatory.access import Scope
from observatory.models import Organization, Product, Team

ZERO = Decimal(0)
SHARE_PLACES = Decimal("0.0000000001")  # the rollups' 10 decimal places
TOKEN_COLUMNS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
CHARGEBACK_COLUMNS = ("team", "product", "provider", "model", "calls", *TOKEN_COLUMNS, "cost_usd", "gpu_cost_usd",
                      "idle_gpu_usd", "total_usd")
CHARGEBACK_MONEY = ("cost_usd", "gpu_cost_usd", "idle_gpu_usd", "total_usd")
FOCUS_COLUMNS = (
    "BillingAccountId", "BillingAccountName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart",
    "ChargePeriodEnd", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargeFrequency", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity",
    "PricingUnit", "PricingCategory", "ProviderName", "PublisherName", "InvoiceIssuerName", "ServiceName",
    "ServiceCategory", "ResourceId", "ResourceName", "ResourceType", "SubAccountId", "SubAccountName", "Tags",
    "x_Calls", "x_InputTokens", "x_CachedInputTokens", "x_CacheWriteTokens", "x_OutputTokens", "x_ReasoningTokens",
    "x_Environment", "x_Feature", "x_Product",
)
FOCUS_MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str | None) -> date:
    """'2026-11' → date(2026, 11, 1); ValueError with a readable message otherwise."""
    match = MONTH.match((text or "").strip())
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise ValueError(f"month must look like 2026-11 (YYYY-MM), not {text!r}.")
    return date(int(match[1]), int(match[2]), 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _slugs(model, ids) -> dict[int | None, str]:
    names = dict(model.objects.filter(pk__in=[i for i in ids if i is not None]).values_list("pk", "slug"))
    return {None: "", **names}


def _money(value) -> Decimal:
    return Decimal(value or 0)


def _gpu_by_team(scope: Scope, start: datetime, end: datetime) -> tuple[dict[int | None, Decimal], Decimal]:
    """Organization-wide non-idle GPU cost per team (None: unattributed) and the idle cost, for the range."""
    rows = GpuCostHour.objects.filter(organization_id=scope.organization_id, hour__gte=start, hour__lt=end)
    used = dict(rows.filter(is_idle=False).values("team_id").annotate(c=Sum("cost_usd")).order_by()
                .values_list("team_id", "c"))
    idle = _money(rows.filter(is_idle=True).aggregate(c=Sum("cost_usd"))["c"])
    return {team: _money(cost) for team, cost in used.items()}, idle


def chargeback(scope: Scope, month: date) -> pd.DataFrame:
    """The month's cost per team × product × provider × model, plus one GPU row per team (see module doc)."""
    start, end = month_bounds(month)
    usage = spend(scope, start, end, ["team", "product", "provider", "model"])
    gpu, idle = _gpu_by_team(scope, start, end)
    if scope.team_ids is not None:
        visible_gpu = {team: cost for team, cost in gpu.items() if team in scope.team_ids}
    else:
        visible_gpu = gpu
    teams = _slugs(Team, {row["team_id"] for row in usage} | set(visible_gpu))
    products = _slugs(Product, {row["product_id"] for row in usage})
    rows = []
    for row in usage:
        cost = _money(row["cost_usd"])
        rows.append({
            "team": teams.get(row["team_id"], ""), "product": products.get(row["product_id"], ""),
            "provider": row["provider"], "model": row["model"], "calls": int(row["calls"]),
            **{name: int(row[name]) for name in TOKEN_COLUMNS},
            "cost_usd": cost, "gpu_cost_usd": ZERO, "idle_gpu_usd": ZERO, "total_usd": cost,
        })
    used_total = sum(gpu.values(), ZERO)
    for team_id, cost in visible_gpu.items():
        share = (idle * cost / used_total).quantize(SHARE_PLACES) if used_total else ZERO
        rows.append({
            "team": teams.get(team_id, ""), "product": "", "provider": "", "model": "", "calls": 0,
            **{name: 0 for name in TOKEN_COLUMNS},
            "cost_usd": ZERO, "gpu_cost_usd": cost, "idle_gpu_usd": share, "total_usd": cost + share,
        })
    frame = pd.DataFrame(rows, columns=list(CHARGEBACK_COLUMNS))
    if not frame.empty:
        frame = frame.sort_values(["team", "product", "provider", "model"], kind="stable", ignore_index=True)
    return frame


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def focus(scope: Scope, month: date) -> pd.DataFrame:
    """The month's LLM usage per day in FinOps FOCUS 1.x columns (see module doc)."""
    start, end = month_bounds(month)
    group = ["team", "product", "provider", "model", "environment", "feature"]
    usage = timeseries(scope, start, end, interval="day", group_by=group)
    organization = Organization.objects.filter(pk=scope.organization_id).values("slug", "name").first() or {}
    teams = _slugs(Team, {row["team_id"] for row in usage})
    team_names = {None: "", **dict(Team.objects.filter(pk__in=[t for t in teams if t]).values_list("pk", "name"))}
    products = _slugs(Product, {row["product_id"] for row in usage})
    rows = []
    for row in usage:
        day = row["period"]
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        cost = _money(row["cost_usd"])
        tokens = int(row["input_tokens"]) + int(row["output_tokens"])
        team, product = teams.get(row["team_id"], ""), products.get(row["product_id"], "")
        provider, model = row["provider"], row["model"]
        tags = {"team": team, "product": product, "environment": row["environment"], "feature": row["feature"]}
        rows.append({
            "BillingAccountId": organization.get("slug", ""), "BillingAccountName": organization.get("name", ""),
            "BillingPeriodStart": _iso(start), "BillingPeriodEnd": _iso(end),
            "ChargePeriodStart": _iso(day_start), "ChargePeriodEnd": _iso(day_start + timedelta(days=1)),
            "BilledCost": cost, "EffectiveCost": cost, "ListCost": cost, "ContractedCost": cost,
            "BillingCurrency": "USD", "ChargeCategory": "Usage", "ChargeClass": "",
            "ChargeDescription": f"{provider or 'unknown provider'} {model or 'unknown model'}: {int(row['calls'])} calls, "
                                 f"{tokens} tokens",
            "ChargeFrequency": "Usage-Based", "ConsumedQuantity": tokens, "ConsumedUnit": "Tokens",
            "PricingQuantity": tokens, "PricingUnit": "1 Token", "PricingCategory": "Standard",
            "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
            "ServiceName": model, "ServiceCategory": "AI and Machine Learning",
            "ResourceId": model, "ResourceName": model, "ResourceType": "Model",
            "SubAccountId": team, "SubAccountName": team_names.get(row["team_id"], ""),
            "Tags": json.dumps(tags, sort_keys=True),
            "x_Calls": int(row["calls"]), "x_InputTokens": int(row["input_tokens"]),
            "x_CachedInputTokens": int(row["cached_input_tokens"]), "x_CacheWriteTokens": int(row["cache_write_tokens"]),
            "x_OutputTokens": int(row["output_tokens"]), "x_ReasoningTokens": int(row["reasoning_tokens"]),
            "x_Environment": row["environment"], "x_Feature": row["feature"], "x_Product": product,
        })
    return pd.DataFrame(rows, columns=list(FOCUS_COLUMNS))


def _money_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    return tuple(c for c in (*CHARGEBACK_MONEY, *FOCUS_MONEY) if c in frame.columns)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with money as plain decimal strings ('0.0012345678', never '1E-10' or a float)."""
    out = frame.copy()
    for column in _money_columns(out):
        out[column] = out[column].map(lambda value: format(_money(value), "f")).astype(object)
    return out


def to_csv(frame: pd.DataFrame) -> str:
    return _as_text(frame).to_csv(index=False)


def to_records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: money as decimal strings, counts as Python ints."""
    records = []
    for record in _as_text(frame).to_dict("records"):
        records.append({key: value.item() if hasattr(value, "item") else value for key, value in record.items()})
    return records


XLSX_MONEY_FORMAT = '"$"#,##0.00########'


def to_xlsx(frame: pd.DataFrame, sheet: str) -> bytes:
    """One worksheet with a bold, frozen header row; money cells are numbers, shown as dollars."""
    from openpyxl.styles import Font

    out = frame.copy()
    for column in _money_columns(out):
        out[column] = out[column].map(_money).astype(object)
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        out.to_excel(writer, sheet_name=sheet, index=False)
        worksheet = writer.sheets[sheet]
        worksheet.freeze_panes = "A2"
        money = {out.columns.get_loc(column) + 1 for column in _money_columns(out)}
        for cell in worksheet[1]:
            cell.font = Font(bold=True)
            worksheet.column_dimensions[cell.column_letter].width = max(10, min(40, len(str(cell.value)) + 2))
        for row in worksheet.iter_rows(min_row=2):
            for cell in row:
                if cell.column in money:
                    cell.number_format = XLSX_MONEY_FORMAT
    return buffer.getvalue()
