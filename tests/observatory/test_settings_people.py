"""Teams, products and people on the settings page: creating and renaming teams and products, inviting someone by
email (the link: emailed, shown once, single use, expiring), changing roles and removing members — each limited
to what the acting role may do, the organization's last admin kept, other organizations' objects 404s."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import timezone

from observatory.models import Invitation, Membership, Organization, Product, Role, Team
from observatory.services import hash_key
from tests.observatory.test_dashboard_seed import Seed, leaks_ads, seed, user

PASSWORD = "quiet-harbour-lantern-42"


@pytest.fixture
def data(org, team, other_team, settings) -> Seed:
    settings.SITE_URL = "https://observatory.example.com"
    data = seed(org, team, other_team)
    data.users["search_admin"] = user("sam", org, team, Role.ADMIN)
    return data


def _invite(client, email: str, where, role: str = Role.VIEWER):
    once = client.get("/settings/").context["invite_form"].initial["once"]
    return client.post("/settings/invitations/", {"invite-email": email, "invite-where": str(where.id) if where else "",
                                                  "invite-role": role, "invite-once": once})


def _link(message) -> str:
    found = re.search(r"https://observatory\.example\.com/invite/[\w-]+/", message.body)
    assert found, message.body
    return found.group(0)


def _membership(data: Seed, who: str, team=None) -> Membership:
    return Membership.objects.get(user=data.users[who], team=team)


def test_an_admin_creates_a_team_invites_a_viewer_who_joins_and_sees_only_that_team(client, data):
    admin = data.login(client, "admin")
    assert admin.post("/settings/teams/", {"new-team-name": "Growth", "new-team-slug": ""}).status_code == 302
    growth = Team.objects.get(organization=data.org, name="Growth")
    assert growth.slug == "growth"

    response = _invite(admin, "Bob@Example.com", growth)
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"  # the link is shown in this answer, once
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["bob@example.com"]
    assert "Growth" in mail.outbox[0].body
    link = _link(mail.outbox[0])
    assert link.encode() in response.content
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get(email="bob@example.com")
    assert (invitation.team, invitation.role, invitation.token_hash) == (growth, Role.VIEWER, hash_key(token))
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    assert b"bob@example.com" in admin.get("/settings/").content  # listed as pending
    assert link.encode() not in admin.get("/settings/").content

    client.logout()
    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200 and b"Growth" in page.content
    weak = client.post(path, {"new_password1": "password", "new_password2": "password"})
    assert weak.status_code == 400
    assert b"This password is too common." in weak.content
    assert client.post(path, {"new_password1": PASSWORD, "new_password2": PASSWORD}).status_code == 302
    assert client.get("/").context["user"].username == "bob@example.com"

    client.logout()
    assert client.post("/login/", {"username": "bob@example.com", "password": PASSWORD}).status_code == 302
    assert client.get("/teams/growth/").status_code == 200
    assert client.get("/teams/search/").status_code == 404
    overview = client.get("/")
    assert [team.name for team in overview.context["viewer"].teams] == ["Growth"]
    assert ">Search<" not in overview.content.decode() and leaks_ads(overview.content) == []

    client.logout()
    used = client.get(path)
    assert used.status_code == 410
    assert b"already used" in used.content


def test_an_expired_revoked_or_unknown_link_gets_a_page_saying_so(client, data):
    admin = data.login(client, "admin")
    _invite(admin, "late@example.com", data.search)
    _invite(admin, "gone@example.com", data.search)
    late, gone = (urlsplit(_link(message)).path for message in mail.outbox)
    Invitation.objects.filter(email="late@example.com").update(expires_at=timezone.now() - timedelta(minutes=1))
    revoke = Invitation.objects.get(email="gone@example.com")
    assert admin.post(f"/settings/invitations/{revoke.id}/revoke/").status_code == 302
    revoked = admin.get("/settings/")
    assert b"The invitation of gone@example.com is revoked" in revoked.content
    assert revoked.context["invitation_rows"] == []  # neither the revoked nor the expired one is pending

    client.logout()
    for path, status, text in ((late, 410, b"has expired"), (gone, 410, b"was revoked"),
                               ("/invite/not-a-token/", 404, b"not valid")):
        for method in ("get", "post"):
            response = getattr(client, method)(path, {"new_password1": PASSWORD, "new_password2": PASSWORD})
            assert (response.status_code, text in response.content) == (status, True), (path, method)
    assert not Membership.objects.filter(user__username__in=["late@example.com", "gone@example.com"]).exists()


def test_an_existing_account_joins_after_logging_in_and_keeps_its_password(client, data):
    adam = data.users["ads_viewer"]
    adam.email, adam.password = "adam@example.com", ""
    adam.set_password(PASSWORD)
    adam.save()
    _invite(data.login(client, "admin"), "adam@example.com", data.search)
    path = urlsplit(_link(mail.outbox[0])).path
    client.logout()
    refused = client.post(path, {"new_password1": "x" * 20, "new_password2": "x" * 20})
    assert b"already has an Observatory account" in refused.content
    adam.refresh_from_db()
    assert adam.check_password(PASSWORD)
    client.force_login(adam)
    assert client.post(path).status_code == 302
    assert Membership.objects.get(user=adam, team=data.search).role == Role.VIEWER


def test_the_link_is_shown_when_the_email_cannot_be_sent(client, data, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there
    response = _invite(data.login(client, "admin"), "offline@example.com", None, Role.ADMIN)
    assert response.status_code == 201
    assert b'data-testid="email-problem"' in response.content
    assert re.search(rb"https://observatory\.example\.com/invite/[\w-]+/", response.content)


def test_the_same_invite_form_sent_twice_invites_once(client, data):
    admin = data.login(client, "admin")
    once = admin.get("/settings/").context["invite_form"].initial["once"]
    form = {"invite-email": "twice@example.com", "invite-where": data.search.id, "invite-role": "viewer",
            "invite-once": once}
    assert admin.post("/settings/invitations/", form).status_code == 201
    assert admin.post("/settings/invitations/", form).status_code == 400  # a pending invitation already
    assert Invitation.objects.filter(email="twice@example.com").count() == 1 and len(mail.outbox) == 1


def test_a_team_admin_manages_only_their_team(client, data):
    client = data.login(client, "search_admin")
    page = client.get("/settings/")
    assert b"Send invitation" in page.content and b"Create team" not in page.content
    assert [choice for choice, _ in page.context["invite_form"].fields["where"].choices] == [str(data.search.id)]

    assert _invite(client, "carol@example.com", data.search, Role.MANAGER).status_code == 201
    org_wide = _invite(client, "dave@example.com", None, Role.ADMIN)
    assert org_wide.status_code == 400
    assert b"only organization admins grant organization-wide roles" in org_wide.content
    assert _invite(client, "erin@example.com", data.ads).status_code == 400
    assert list(Invitation.objects.values_list("email", flat=True)) == ["carol@example.com"]

    vera = _membership(data, "search_viewer", data.search)
    assert client.post(f"/settings/members/{vera.id}/role/", {f"member{vera.id}-role": "manager"}).status_code == 302
    assert Membership.objects.get(pk=vera.pk).role == Role.MANAGER
    assert client.post(f"/settings/teams/{data.search.id}/", {f"team{data.search.id}-name": "Search & Answers"}).status_code == 302
    assert Team.objects.get(pk=data.search.pk).name == "Search & Answers"
    assert client.post("/settings/products/", {"new-product-name": "Autocomplete", "new-product-team": data.search.id}).status_code == 302
    assert Product.objects.get(name="Autocomplete").team == data.search

    adam = _membership(data, "ads_viewer", data.ads)
    alice = _membership(data, "admin")
    assert client.post(f"/settings/members/{adam.id}/role/", {f"member{adam.id}-role": "admin"}).status_code == 404
    assert client.post(f"/settings/members/{adam.id}/remove/").status_code == 404
    assert client.post(f"/settings/members/{alice.id}/remove/").status_code == 404
    assert client.post(f"/settings/teams/{data.ads.id}/", {f"team{data.ads.id}-name": "Mine"}).status_code == 404
    assert client.post(f"/settings/products/{data.ads_ranker.id}/", {f"product{data.ads_ranker.id}-name": "Mine"}).status_code == 404
    assert client.post("/settings/products/", {"new-product-name": "Sneaky", "new-product-team": data.ads.id}).status_code == 400
    assert client.post("/settings/teams/", {"new-team-name": "Shadow"}).status_code == 403
    assert Membership.objects.get(pk=adam.pk).role == Role.VIEWER
    assert Team.objects.get(pk=data.ads.pk).name == "Ads" and not Team.objects.filter(name="Shadow").exists()
    assert not Product.objects.filter(name__in=["Mine", "Sneaky"]).exists()


def test_viewers_and_managers_see_no_controls_and_get_403(client, data):
    admin = data.login(client, "admin")
    _invite(admin, "pending@example.com", data.search)
    invitation = Invitation.objects.get()
    mona = _membership(data, "search_manager", data.search)
    for who in ("search_viewer", "search_manager"):
        client = data.login(client, who)
        page = client.get("/settings/").content
        for control in (b"Send invitation", b"Create team", b"Create product", b"Rename", b"Remove", b'action="/settings/teams/',
                        b'action="/settings/products/', b'action="/settings/invitations/', b'action="/settings/members/'):
            assert control not in page, (who, control)
        for url, form in (("/settings/teams/", {"new-team-name": "X"}),
                          (f"/settings/teams/{data.search.id}/", {f"team{data.search.id}-name": "X"}),
                          ("/settings/products/", {"new-product-name": "X", "new-product-team": data.search.id}),
                          (f"/settings/products/{data.answers.id}/", {f"product{data.answers.id}-name": "X"}),
                          ("/settings/invitations/", {"invite-email": "x@example.com", "invite-where": data.search.id,
                                                      "invite-role": "admin"}),
                          (f"/settings/invitations/{invitation.id}/revoke/", {}),
                          (f"/settings/members/{mona.id}/role/", {f"member{mona.id}-role": "admin"}),
                          (f"/settings/members/{mona.id}/remove/", {})):
            assert client.post(url, form).status_code == 403, (who, url)
    assert Membership.objects.get(pk=mona.pk).role == Role.MANAGER
    assert Invitation.objects.get().revoked_at is None and Invitation.objects.count() == 1
    assert not Team.objects.filter(name="X").exists() and Product.objects.get(pk=data.answers.pk).name == "Answers"


def test_the_last_organization_admin_cannot_be_demoted_or_removed(client, data):
    client = data.login(client, "admin")
    alice = _membership(data, "admin")
    demoted = client.post(f"/settings/members/{alice.id}/role/", {f"member{alice.id}-role": "viewer"})
    assert demoted.status_code == 400
    assert b"last admin" in demoted.content
    removed = client.post(f"/settings/members/{alice.id}/remove/")
    assert removed.status_code == 400 and b"last admin" in removed.content
    assert Membership.objects.get(pk=alice.pk).role == Role.ADMIN

    vera = _membership(data, "search_viewer", data.search)  # a second admin, organization-wide
    Membership.objects.create(user=vera.user, organization=data.org, team=None, role=Role.ADMIN)
    assert client.post(f"/settings/members/{alice.id}/role/", {f"member{alice.id}-role": "viewer"}).status_code == 302
    assert Membership.objects.get(pk=alice.pk).role == Role.VIEWER


def test_an_admin_removes_a_member(client, data):
    client = data.login(client, "admin")
    mona = _membership(data, "search_manager", data.search)
    assert client.post(f"/settings/members/{mona.id}/remove/").status_code == 302
    assert not Membership.objects.filter(pk=mona.pk).exists()
    page = client.get("/settings/")
    assert b"mona is removed from Search." in page.content
    assert [row["membership"].user.username for row in page.context["member_rows"]] == ["alice", "adam", "sam", "vera"]
    assert b"You are not a member of any team yet" in data.login(client, "search_manager").get("/teams/search/").content


def test_form_errors_show_beside_their_fields_all_at_once(client, data):
    client = data.login(client, "admin")
    duplicate = client.post("/settings/teams/", {"new-team-name": "search", "new-team-slug": "ads"})
    assert duplicate.status_code == 400
    assert re.search(rb'data-testid="error-new-team-name">A team named \xe2\x80\x9csearch\xe2\x80\x9d already exists',
                     duplicate.content)
    assert b'data-testid="error-new-team-slug">The slug \xe2\x80\x9cads\xe2\x80\x9d is taken' in duplicate.content
    assert Team.objects.filter(organization=data.org).count() == 2

    bad = client.post("/settings/invitations/", {"invite-email": "not-an-email", "invite-where": "999999",
                                                 "invite-role": "owner"})
    assert bad.status_code == 400
    for field in ("invite-email", "invite-where", "invite-role"):
        assert f'data-testid="error-{field}"'.encode() in bad.content, field
    renamed = client.post(f"/settings/products/{data.answers.id}/", {f"product{data.answers.id}-name": "Ads Ranker",
                                                                     f"product{data.answers.id}-team": data.search.id})
    assert renamed.status_code == 400
    assert f'data-testid="error-product{data.answers.id}-name"'.encode() in renamed.content
    assert not Invitation.objects.exists() and Product.objects.get(pk=data.answers.pk).name == "Answers"


def test_another_organizations_objects_are_404s(client, data):
    other = Organization.objects.create(name="Globex", slug="globex")
    team = Team.objects.create(organization=other, name="Secret", slug="secret")
    product = Product.objects.create(organization=other, team=team, name="Hidden", slug="hidden")
    member = user("gus", other, None, Role.ADMIN)
    membership = Membership.objects.get(user=member)
    invitation = Invitation.objects.create(organization=other, email="x@globex.com", token_hash="0" * 64,
                                           expires_at=timezone.now() + timedelta(days=1))
    client = data.login(client, "admin")
    for url, form in ((f"/settings/teams/{team.id}/", {f"team{team.id}-name": "Taken"}),
                      (f"/settings/products/{product.id}/", {f"product{product.id}-name": "Taken"}),
                      (f"/settings/invitations/{invitation.id}/revoke/", {}),
                      (f"/settings/members/{membership.id}/role/", {f"member{membership.id}-role": "viewer"}),
                      (f"/settings/members/{membership.id}/remove/", {})):
        assert client.post(url, form).status_code == 404, url
    assert client.post("/settings/teams/?org=globex", {"new-team-name": "Taken"}).status_code == 404
    assert (Team.objects.get(pk=team.pk).name, Product.objects.get(pk=product.pk).name) == ("Secret", "Hidden")
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None


def test_people_actions_reject_get_and_require_login(client, data):
    urls = ["/settings/teams/", f"/settings/teams/{data.search.id}/", "/settings/products/", "/settings/invitations/",
            f"/settings/members/{_membership(data, 'admin').id}/remove/"]
    for url in urls:
        assert client.post(url).status_code == 302  # to the login page
    client = data.login(client, "admin")
    for url in urls:
        assert client.get(url).status_code == 405


def test_a_rows_edit_form_is_built_only_when_asked_for(client, data):
    """Fifty teams and a hundred products would be a hundred and fifty forms on every visit: each row links to its
    form instead (?edit=<row>), and only that row's form is on the page."""
    admin = data.login(client, "admin")
    page = admin.get("/settings/").content.decode()
    for row in (f"team{data.search.id}", f"team{data.ads.id}", f"product{data.answers.id}"):
        assert f"edit={row}#{row}" in page
    assert f'action="/settings/teams/{data.search.id}/' not in page
    assert f'action="/settings/products/{data.answers.id}/' not in page

    editing = admin.get(f"/settings/?edit=team{data.search.id}").content.decode()
    assert editing.count('action="/settings/teams/') == 2  # the new-team form and this row's rename form
    assert re.search(rf'name="team{data.search.id}-name"[^>]*value="Search"|value="Search"[^>]*name="team{data.search.id}-name"',
                     editing)
    product_form = admin.get(f"/settings/?edit=product{data.answers.id}").content.decode()
    assert f'action="/settings/products/{data.answers.id}/' in product_form
    assert f'<option value="{data.search.id}" selected>' in product_form

    viewer = data.login(client, "search_viewer")
    assert 'action="/settings/teams/' not in viewer.get(f"/settings/?edit=team{data.search.id}").content.decode()
