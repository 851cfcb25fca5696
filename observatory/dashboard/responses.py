"""How a dashboard page answers: the whole page, or only its body for htmx (its main table as CSV goes out
through `billing.tables`, like every download)."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers

from observatory.access import Viewer
from observatory.dashboard.filters import Period

CARRIED = ("org", "range", "start", "end")  # kept when moving from page to page
PAGE_ONLY = ("range", "start", "end", "cursor", "format", "page")  # set by the range picker and pagers themselves


def wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("format") == "csv"


def wants_body_only(request: HttpRequest) -> bool:
    """An htmx request swapping the page body; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request and not request.htmx.boosted


def render_page(request: HttpRequest, page: str, viewer: Viewer, period: Period | None, context: dict,
                status: int = 200) -> HttpResponse:
    """Render templates/observatory/<page>.html, or _<page>_body.html for htmx."""
    template = f"observatory/_{page}_body.html" if wants_body_only(request) else f"observatory/{page}.html"
    carried = [(name, request.GET[name]) for name in CARRIED if request.GET.get(name)]
    response = TemplateResponse(request, template, {
        "viewer": viewer,
        "period": period,
        "nav": page,
        "body_template": f"observatory/_{page}_body.html",
        "carry": f"?{urlencode(carried)}" if carried else "",
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
