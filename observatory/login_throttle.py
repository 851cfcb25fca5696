"""Login throttling with django-axes: after too many wrong passwords an account (whatever address tries it) and
an address (whatever accounts it tries) are locked out for a while, with a page that says so, and a log line.

Axes records the failures (the `axes` tables, visible in Django admin) and refuses locked-out attempts in the
first authentication backend. The address is the connecting peer's, or — behind OBSERVATORY_TRUSTED_PROXY_HOPS
trusted proxies — the one the nearest of them appended to X-Forwarded-For, so a client cannot pick its own.
"""

from __future__ import annotations

import logging

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render

log = logging.getLogger(__name__)


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked-out account or address. Calls without a request (management commands, the test client's
    `login()`) are not web logins and pass through to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the address the outermost trusted proxy saw (None when unknown, as
    for a login made in code)."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None


def locked_out(request, original_response=None, credentials=None):
    """The login page again, with the reason and when to retry; 429 with Retry-After."""
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    log.warning("login locked out: account %r from %s after %s failed attempts", username[:150],
                client_address(request), settings.AXES_FAILURE_LIMIT)
    message = ("Too many failed log-in attempts for this account or from this address. "
               + (f"Try again in {minutes} minutes" if minutes else "Ask an administrator to unlock it")
               + ", or ask an administrator to reset your password.")
    form = AuthenticationForm(request, initial={"username": username})
    response = render(request, "registration/login.html", {"form": form, "locked_out": message,
                                                                     "next": request.POST.get("next", "")},
                                status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
