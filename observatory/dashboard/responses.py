"""How a dashboard page answers: the whole page, or only its body for htmx (its main table as CSV goes out
through `billing.tables`, like every download)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from observatory.access import Viewer
from observatory.dashboard.filters import (
    DEFAULT_RANGE,
    FILTER_PARAMS,
    RANGE_PARAMS,
    Period,
    parse_period,
    range_params,
)

EXPORT_CHUNK = 2000  # rows per fetch of a server-side cursor: a CSV of any length streams in flat memory
PAGE_ONLY = ("range", "start", "end", "cursor", "format", "page")  # set by the range picker and pagers themselves
REMEMBERED_RANGE = "dashboard_range"  # the session key of the range the user picked last


def page_period(request: HttpRequest) -> Period:
    """The range the URL names; else the one this user picked last (kept in their session); else DEFAULT_RANGE.

    Every page reads its range here, so one choice holds on every page until the user picks another.
    """
    named = {name: request.GET[name] for name in RANGE_PARAMS if request.GET.get(name)}
    if not named:
        return parse_period(request.session.get(REMEMBERED_RANGE, {}), DEFAULT_RANGE, timezone.now())
    period = parse_period(named, DEFAULT_RANGE, timezone.now())
    if not period.error and request.session.get(REMEMBERED_RANGE) != named:
        request.session[REMEMBERED_RANGE] = named
    return period


def carried_params(request: HttpRequest, viewer: Viewer, period: Period | None) -> list[tuple[str, str]]:
    """What every link to another page keeps: the organization, the range shown (else the remembered one) and the
    calls' filters."""
    filters = [(name, request.GET[name]) for name in FILTER_PARAMS if request.GET.get(name)]
    return [("org", viewer.organization.slug), *range_params(period or page_period(request)), *filters]


def wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("format") == "csv"


def wants_body_only(request: HttpRequest) -> bool:
    """An htmx request swapping the page body; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


def render_page(request: HttpRequest, page: str, viewer: Viewer, period: Period | None, context: dict,
                status: int = 200) -> HttpResponse:
    """Render templates/observatory/<page>.html, or _<page>_body.html for htmx."""
    template = f"observatory/_{page}_body.html" if wants_body_only(request) else f"observatory/{page}.html"
    carried = carried_params(request, viewer, period)
    params = request.GET.copy()  # this page's querystring, naming the organization and range shown even when the
    params.setdefault("org", viewer.organization.slug)  # URL did not
    if period is not None:
        for name in RANGE_PARAMS:
            params.pop(name, None)
        params.update(range_params(period))
    response = TemplateResponse(request, template, {
        "viewer": viewer,
        "period": period,
        "nav": page,
        "body_template": f"observatory/_{page}_body.html",
        "carry": f"?{urlencode(carried)}",
        "params": params,
        "kept_params": [(k, v) for k, v in request.GET.items() if k not in PAGE_ONLY and v],
        **context,
    }, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def csv_name(page: str, viewer: Viewer, period: Period | None) -> str:
    """The download's file name: organization, page and the range's first and last day."""
    parts = [viewer.organization.slug, page]
    if period is not None:
        parts += [f"{period.start:%Y%m%d}", f"{period.last_day:%Y%m%d}"]
    return "-".join(parts) + ".csv"


MONEY = Decimal("0.000001")


def money_cell(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(MONEY)
