"""How a dashboard page answers: the whole page, only its body for htmx, or its main table as CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers

from observatory.access import Viewer
from observatory.dashboard.filters import Period

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
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


def spreadsheet_safe(value: object) -> object:
    """Text that a spreadsheet would run as a formula (=, +, -, @ first) gets a leading quote; numbers pass."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS and not NUMBER.fullmatch(value):
        return f"'{value}"
    return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> HttpResponse:
    """Model names, users and sessions come from ingested spans: they are escaped for spreadsheets."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(value) for value in row] for row in rows)
    return response


def csv_name(page: str, viewer: Viewer, period: Period | None) -> str:
    parts = [viewer.organization.slug, page]
    if period is not None:
        parts += [f"{period.start:%Y%m%d}", f"{period.last_day:%Y%m%d}"]
    return "-".join(parts)
