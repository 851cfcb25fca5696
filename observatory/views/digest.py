"""The weekly digest's page (/digest/): a preview of exactly what this user gets, opting in and out, a test send,
the organization's digest Slack webhook; and the email's one-click unsubscribe link, which needs no login."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.alerts.delivery import ChannelTarget, failure_text
from billing.alerts.webhook_guard import validate_webhook_url
from billing.models import Delivery
from observatory import digest
from observatory.access import Viewer, dashboard_view
from observatory.dashboard.digest import compose
from observatory.dashboard.responses import render_page
from observatory.models import Organization


class SlackWebhookForm(forms.Form):
    slack_webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https",
                                       label="Digest Slack webhook",
                                       help_text="A Slack incoming webhook; empty: no Slack digest.")

    def clean_slack_webhook_url(self) -> str:
        validate_webhook_url(self.cleaned_data["slack_webhook_url"])
        return self.cleaned_data["slack_webhook_url"]


def _page_url(viewer: Viewer) -> str:
    return f"{reverse('digest')}?org={viewer.organization.slug}"


def _digest_page(request: HttpRequest, viewer: Viewer, slack_form: SlackWebhookForm | None = None,
                 status: int = 200) -> HttpResponse:
    user = request.user
    now = timezone.now()
    views = digest.digest_viewers(user, viewer.organization)
    webhook = viewer.organization.digest_slack_webhook_url
    return render_page(request, "digest", viewer, None, {
        "nav": "settings",
        "digests": [compose(view, now) for view in views],
        "opted_out": digest.opted_out(user, viewer.organization),
        "email": user.email,
        "slack_form": slack_form or SlackWebhookForm(),
        "slack_shown": ChannelTarget(Delivery.Channel.SLACK, webhook).shown if webhook else "",
    }, status=status)


@require_GET
@dashboard_view
def digest_page(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    return _digest_page(request, viewer)


@require_POST
@dashboard_view
def digest_preferences(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    receive = request.POST.get("receive") == "on"
    digest.set_opted_out(request.user, viewer.organization, not receive)
    if receive:
        messages.success(request, "You will get the weekly digest every Monday at 08:00 UTC.")
    else:
        messages.success(request, f"You will no longer get the weekly digest of {viewer.organization.name}.")
    return redirect(_page_url(viewer))


@require_POST
@dashboard_view
def digest_test(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not request.user.email:
        messages.warning(request, "Your account has no email address: ask an admin to add one.")
        return redirect(_page_url(viewer))
    try:
        sent = digest.send_test(viewer, request.user)
    except Exception as exc:  # the mail server's answer is the user's to see
        messages.warning(request, f"The test could not be sent: {failure_text(exc)}")
        return redirect(_page_url(viewer))
    if sent:
        messages.success(request, f"Sent {sent} test digest{'s' if sent > 1 else ''} to {request.user.email}.")
    else:
        messages.warning(request, "You manage no team here, so there is no digest to send.")
    return redirect(_page_url(viewer))


@require_POST
@dashboard_view
def digest_slack(request: HttpRequest, viewer: Viewer) -> HttpResponse:
    if not viewer.is_admin:
        return HttpResponseForbidden("Only organization admins set the digest's Slack webhook.")
    form = SlackWebhookForm(request.POST)
    if not form.is_valid():
        return _digest_page(request, viewer, form, status=400)
    digest.set_slack_webhook(viewer.organization, form.cleaned_data["slack_webhook_url"])
    if form.cleaned_data["slack_webhook_url"]:
        messages.success(request, "The organization's weekly digest will also be posted to Slack.")
    else:
        messages.success(request, "The weekly digest is no longer posted to Slack.")
    return redirect(_page_url(viewer))


@csrf_exempt  # the signed token in the URL is the credential; mail clients' one-click POST (RFC 8058) has no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm (link scanners only GET); POST opts out, and doing it twice changes nothing."""
    found = digest.read_unsubscribe_token(token)
    user = organization = None
    if found is not None:
        user = get_user_model().objects.filter(pk=found[0]).first()
        organization = Organization.objects.filter(pk=found[1]).first()
    if user is None or organization is None:
        return render(request, "observatory/digest_unsubscribe.html", {"invalid": True}, status=400)
    done = request.method == "POST"
    if done:
        digest.set_opted_out(user, organization, True)
    return render(request, "observatory/digest_unsubscribe.html",
                  {"done": done, "organization": organization, "email": user.email, "token": token})
