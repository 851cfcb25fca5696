"""GPU pools: their cost and idle share, and the admin's add, change and delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from billing import services as billing_services
from billing.forms import GpuPoolForm
from billing.models import GpuPool
from billing.queries import gpu_cost
from billing.tables import Table, csv_response
from observatory.access import (
    Viewer,
    dashboard_view,
)
from observatory.dashboard import gpu as gpu_reads
from observatory.dashboard.filters import Period
from observatory.dashboard.responses import csv_name, money_cell, page_period, render_page, wants_csv


@require_GET
@dashboard_view
def gpu(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    period = page_period(request)
    pools = gpu_reads.pool_reports(viewer.scope, period, viewer.team_names)
    if wants_csv(request):
        header = ["pool", "gpu_model", "gpus", "hourly_usd_per_gpu", "cost_usd", "idle_usd", "idle_share_pct"]
        return csv_response(Table(header, (
            {"pool": r.pool.name, "gpu_model": r.pool.gpu_model, "gpus": r.pool.gpu_count,
             "hourly_usd_per_gpu": r.pool.hourly_usd_per_gpu, "cost_usd": money_cell(r.total_usd),
             "idle_usd": money_cell(r.idle_usd),
             "idle_share_pct": None if r.idle_share is None else round(r.idle_share, 1)} for r in pools
        )), csv_name("gpu-pools", viewer, period))
    return _gpu_page(request, viewer, period, pools, GpuPoolForm(organization=viewer.organization) if viewer.is_admin else None)


def _gpu_page(request: HttpRequest, viewer: Viewer, period: Period, pools, form, status: int = 200,
              bound: GpuPoolForm | None = None) -> HttpResponse:
    """The GPU page; admins also get the new-pool form and one edit form per pool (`bound`: the one just posted)."""
    editable = GpuPool.objects.filter(organization=viewer.organization).order_by("name") if viewer.is_admin else []
    forms = [(pool, bound if bound is not None and bound.instance.pk == pool.pk else
              GpuPoolForm(instance=pool, organization=viewer.organization, prefix=f"pool{pool.pk}")) for pool in editable]
    return render_page(request, "gpu", viewer, period, {
        "pools": pools, "total": gpu_cost(viewer.scope, period.start, period.end), "form": form, "editable": forms,
    }, status=status)


def _gpu_url(viewer: Viewer) -> str:
    return f"{reverse('gpu')}?org={viewer.organization.slug}"


@require_POST
@dashboard_view
def save_gpu_pool(request: HttpRequest, viewer: Viewer, pool_id: int | None = None) -> HttpResponse:
    """Create (no id) or change a pool; organization admins only."""
    if not viewer.is_admin:
        return HttpResponseForbidden("Only organization admins add and change GPU pools.")
    pool = None
    if pool_id is not None:
        pool = GpuPool.objects.filter(organization=viewer.organization, pk=pool_id).first()
        if pool is None:
            raise Http404("No such pool.")
    form = GpuPoolForm(request.POST, instance=pool, organization=viewer.organization,
                       prefix=f"pool{pool.pk}" if pool else None)
    if not form.is_valid():
        period = page_period(request)
        pools = gpu_reads.pool_reports(viewer.scope, period, viewer.team_names)
        if pool is None:
            return _gpu_page(request, viewer, period, pools, form, status=400)
        pool.refresh_from_db()  # the form changed the instance while validating
        return _gpu_page(request, viewer, period, pools, GpuPoolForm(organization=viewer.organization), status=400,
                         bound=form)
    saved = billing_services.save_gpu_pool(viewer, form.save(commit=False))
    messages.success(request, f"GPU pool “{saved.name}” is saved: its cost is split from the next hour on.")
    return redirect(_gpu_url(viewer))


@require_POST
@dashboard_view
def delete_gpu_pool(request: HttpRequest, viewer: Viewer, pool_id: int) -> HttpResponse:
    if not viewer.is_admin:
        return HttpResponseForbidden("Only organization admins delete GPU pools.")
    pool = GpuPool.objects.filter(organization=viewer.organization, pk=pool_id).first()
    if pool is None:
        raise Http404("No such pool.")
    name = pool.name
    billing_services.delete_gpu_pool(viewer, pool)
    messages.success(request, f"GPU pool “{name}” is deleted, with its cost history.")
    return redirect(_gpu_url(viewer))
