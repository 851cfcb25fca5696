import pytest
from django.contrib.auth import get_user_model

from observatory.models import Membership, Role


@pytest.fixture
def viewer(team):
    user = get_user_model().objects.create_user("vera", password="pw-123456!")
    Membership.objects.create(user=user, organization=team.organization, team=team, role=Role.VIEWER)
    return user


def test_it_requires_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_login_page_renders(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to Observatory" in response.content


@pytest.mark.django_db
def test_it_lists_only_the_users_teams(client, viewer, team, other_team):
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    assert [t.slug for t in response.context["teams"]] == ["search"]
    assert b"Ads" not in response.content


@pytest.mark.django_db
def test_an_org_wide_member_sees_every_team(client, team, other_team):
    user = get_user_model().objects.create_user("olga", password="pw-123456!")
    Membership.objects.create(user=user, organization=team.organization, team=None, role=Role.MANAGER)
    client.force_login(user)
    assert sorted(t.slug for t in client.get("/").context["teams"]) == ["ads", "search"]


@pytest.mark.django_db
def test_it_logs_in_with_a_password(client, viewer):
    response = client.post("/login/", {"username": "vera", "password": "pw-123456!"}, follow=True)
    assert response.status_code == 200
    assert b"Search" in response.content
