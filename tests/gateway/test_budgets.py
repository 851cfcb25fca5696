"""Hard budgets at the gateway: once a limit budget is spent the next call is refused with 429 in the provider's own
shape (the real clients raise RateLimitError with our message), refusals are counted apart from calls, two gateway
processes share one counter, the overshoot under concurrent calls stays within the stated bound, and a soft budget
still only alerts."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from django.db import connection

from billing.alerts.budgets import evaluate_budgets, period_bounds
from billing.limits import refused_this_period
from billing.models import Alert, BudgetRefusal
from ingest.models import LLMCall
from tests.billing.test_alerts import add_spend, make_budget
from tests.sdk.sdk_fakes import ANSWER

pytestmark = pytest.mark.django_db(transaction=True)
HI = [{"role": "user", "content": "hi"}]
CALL_COST = Decimal("0.0001542")  # one gpt-4o-mini call of the fake provider (see test_openai)
ROOT = Path(__file__).resolve().parents[2]


def month_end() -> datetime:
    return period_bounds("month", "UTC", datetime.now(UTC))[1]


def test_a_spent_limit_budget_refuses_the_next_call_with_the_openai_clients_rate_limit_error(gw, oai, org, provider):
    budget = make_budget(org, name="Acme monthly", amount_usd=Decimal("0.01"), hard_limit=True)
    add_spend(org, "0.0099", datetime.now(UTC))

    assert oai.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content == ANSWER
    gw.calls(2)  # stored: its cost is on the counter, so the budget is now at $0.0100542

    with pytest.raises(openai.RateLimitError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)

    error = refused.value
    assert error.status_code == 429 and error.code == "budget_exceeded"
    resets = month_end().strftime("%Y-%m-%d %H:%M UTC")
    assert error.body["message"] == (
        f"Observatory budget 'Acme monthly' is spent: $0.01 of $0.01 this month (UTC). The gateway refuses calls "
        f"under it until it resets at {resets}; ask its owner to raise it, or turn off its hard limit.")
    assert error.response.headers["x-should-retry"] == "false"
    assert 0 < int(error.response.headers["retry-after"]) <= 31 * 86400
    assert len(provider.requests) == 1  # the refused call never reached the provider
    assert LLMCall.objects.count() == 2  # and is not a call: no row, no cost
    deadline = time.monotonic() + 5  # the book writes the refusals it counted in the background, 0.2 s apart
    while refused_this_period(budget) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert refused_this_period(budget) == 1
    assert BudgetRefusal.objects.get().refused == 1


def test_a_team_limit_refuses_that_teams_claude_calls_in_anthropics_shape_and_no_one_elses(gw, claude, org, team,
                                                                                         other_team):
    make_budget(org, name="Search daily", team=team, period="day", amount_usd=Decimal("5.00"), hard_limit=True)
    add_spend(org, "5.00", datetime.now(UTC), team=team)

    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=HI,
                               extra_headers={"x-observatory-team": "search"})
    other = claude.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=HI,
                                   extra_headers={"x-observatory-team": other_team.slug})

    assert refused.value.status_code == 429
    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "rate_limit_error"
    assert refused.value.body["error"]["message"].startswith(
        "Observatory budget 'Search daily' is spent: $5.00 of $5.00 this day (UTC).")
    assert other.content[0].text == ANSWER
    (_, served) = gw.calls(2)
    assert served.team == other_team


def test_a_soft_budget_lets_calls_through_and_still_alerts(gw, oai, org):
    make_budget(org, name="Soft", amount_usd=Decimal("0.01"), thresholds=[100])
    add_spend(org, "0.02", datetime.now(UTC))

    answer = oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    gw.calls(2)
    evaluate_budgets()

    assert answer.choices[0].message.content == ANSWER
    crossed = Alert.objects.filter(kind=Alert.Kind.THRESHOLD)
    assert [(a.threshold_percent, a.spend_usd) for a in crossed] == [(100, Decimal("0.020154"))]  # stored to 6 places


def test_concurrent_calls_overshoot_a_limit_by_at_most_the_calls_in_flight(gw, obs_key, org):
    """The stated bound (billing.limits): past the amount, only calls admitted before the counter showed it."""
    budget = make_budget(org, name="Tight", amount_usd=Decimal("0.01"), hard_limit=True)
    add_spend(org, "0.0095", datetime.now(UTC))  # 4 calls' worth left
    in_flight = 20

    async def burst():
        client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)
        results = await asyncio.gather(*(client.chat.completions.create(model="gpt-4o-mini", messages=HI)
                                         for _ in range(in_flight)), return_exceptions=True)
        await client.close()
        return results

    results = asyncio.run(burst())
    served = sum(1 for r in results if not isinstance(r, Exception))
    assert all(isinstance(r, openai.RateLimitError) for r in results if isinstance(r, Exception))
    gw.calls(1 + served)
    spent = sum(LLMCall.objects.values_list("cost_usd", flat=True))
    assert spent == Decimal("0.0095") + served * CALL_COST
    assert spent <= budget.amount_usd + in_flight * CALL_COST
    with pytest.raises(openai.RateLimitError):  # once the burst is stored, nothing more gets through
        openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=HI)


@pytest.fixture
def second_gateway(tmp_path, gw):
    """Another gateway process (`gateway.asgi` under uvicorn) on the same database."""
    db = connection.settings_dict
    url = f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}" + (f"&port={db['PORT']}" if db["PORT"] else "")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "OBSERVATORY_HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS": "127.0.0.0/8"}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "gateway.asgi:application", "--port", str(port),
                                "--log-level", "warning"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the second gateway did not start")
    yield base
    process.terminate()
    process.wait(20)


def test_two_gateway_processes_share_the_counter(gw, second_gateway, obs_key, org):
    make_budget(org, name="Shared", amount_usd=Decimal("0.01"), hard_limit=True)
    # $0.0098 + one call ($0.0001542) is still under $0.01, whichever gateway reads the counter when: only the
    # second call spends it ($0.0101084), so a refusal at the second gateway can only come from the first's spend
    add_spend(org, "0.0098", datetime.now(UTC))
    first = openai.OpenAI(base_url=gw.url + "/v1", api_key=obs_key, max_retries=0)
    second = openai.OpenAI(base_url=second_gateway + "/v1", api_key=obs_key, max_retries=0)

    assert second.chat.completions.create(model="gpt-4o-mini", messages=HI).choices[0].message.content == ANSWER
    first.chat.completions.create(model="gpt-4o-mini", messages=HI)  # the call that spends the budget, via the first
    gw.calls(3)

    deadline = time.monotonic() + 5  # the second process re-reads the shared counter every 0.2 s
    while True:
        try:
            second.chat.completions.create(model="gpt-4o-mini", messages=HI)
        except openai.RateLimitError as exc:
            assert "'Shared' is spent" in exc.body["message"]
            break
        assert time.monotonic() < deadline, "the second gateway never saw the first one's spend"
        time.sleep(0.1)
