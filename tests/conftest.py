"""Test setup: real PostgreSQL — the embedded server unless DATABASE_URL points elsewhere."""

import os

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop in the test thread


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    from django.conf import settings

    if settings.EMBEDDED_DATABASE:
        from observatory.embedded_db import ensure_postgres, socket_dir

        server = ensure_postgres(settings.EMBEDDED_PGDATA, cleanup_mode="stop")
        settings.DATABASES["default"]["HOST"] = socket_dir(server)


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Each test starts with empty in-process caches (API keys, team names, hard budgets), as a new worker would."""
    from billing.limits import book
    from ingest.attribution import rule_cache
    from ingest.services import tenancy_cache
    from observatory.services import forget_cached_keys

    forget_cached_keys()
    tenancy_cache.clear()
    rule_cache.clear()
    book.forget()
    yield
    book.forget()  # its background thread (started by a gateway's first call) ends with the test


@pytest.fixture(autouse=True)
def _answered_exports_stored_at_once(settings):
    """Trace exports are stored right after their answer, in the request's thread and its test transaction: a
    writer thread (ingest.write_behind) would use a connection of its own, which cannot see the test's uncommitted
    rows. tests/ingest/test_write_behind.py runs the writer thread as a server does."""
    settings.INGEST_BATCH_SECONDS = 0


@pytest.fixture
def org(db):
    from observatory.models import Organization

    return Organization.objects.create(name="Acme", slug="acme")


@pytest.fixture
def team(org):
    from observatory.models import Team

    return Team.objects.create(organization=org, name="Search", slug="search")


@pytest.fixture
def other_team(org):
    from observatory.models import Team

    return Team.objects.create(organization=org, name="Ads", slug="ads")
