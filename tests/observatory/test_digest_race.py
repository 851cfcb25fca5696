"""The weekly digest goes out once per person and week even when two workers run the job at the same moment:
two threads, each with its own PostgreSQL connection, start together against a slow SMTP server."""

import asyncio
import threading

import pytest
from django.db import connection

from observatory import digest
from observatory.models import DigestSend
from tests.observatory.test_digest import NOW, PickyMailbox, seed_week, serving_mail

RACERS = 2


class SlowMailbox(PickyMailbox):
    """Takes a while over each message, so the other racer reaches the same digest while it is being sent."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.3)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp(settings):
    yield from serving_mail(settings, SlowMailbox())


def test_two_workers_running_the_job_at_once_send_each_digest_once(transactional_db, org, team, other_team, slow_smtp):
    seed_week(org, team, other_team)
    start = threading.Barrier(RACERS)
    outcomes, failures = [], []

    def worker():
        try:
            start.wait(timeout=10)
            outcomes.append(digest.send_weekly_digests(NOW))
        except Exception as exc:  # reported below, with the test's failure
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(m["To"] for m in slow_smtp.messages) == ["adam@example.com", "alice@example.com", "mona@example.com"]
    assert sum(outcome.get("sent", 0) for outcome in outcomes) == 3
    assert sorted(DigestSend.objects.values_list("status", flat=True)) == ["sent"] * 3
