"""Inviting someone in a real browser: an admin invites a viewer of one team from Settings, copies the link shown
once, and the invitee (a browser with no session) sets a password through it and lands on their team's pages."""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_invited_viewer_sets_a_password_and_sees_only_their_team(signed_in, browser, live_server, month, screenshot):
    page = signed_in
    page.goto(f"{live_server.url}/settings/")
    page.fill("#id_invite-email", "bob@example.com")
    page.select_option("#id_invite-where", label="Growth")
    page.click("#invite-form button[type=submit]")
    link = page.locator("#invite-link").inner_text().strip()
    assert re.fullmatch(r"http://[^/]+/invite/[\w-]+/", link)
    assert "bob@example.com" in page.locator("#invitations").inner_text()

    invitee = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    invitee.goto(f"{live_server.url}{link[link.index('/invite/'):]}")
    assert "the Growth team" in invitee.locator("main").inner_text()
    invitee.fill("#id_new_password1", "quiet-harbour-lantern-42")
    invitee.fill("#id_new_password2", "quiet-harbour-lantern-42")
    invitee.click("button[type=submit]")
    invitee.wait_for_url(re.compile(r"/\?org=acme$"))
    assert invitee.locator("nav.teams a").all_inner_texts() == ["Growth"]
    assert invitee.locator(".sidebar .who").inner_text() == "bob@example.com"
    invitee.context.close()
