"""The recording process `observatory gateway` runs (gateway.recording.ProcessRecorder): calls priced and stored in a
process of their own, every call exactly once, and a recording process that dies replaced without losing or double
counting the batches it had not confirmed."""

import os
import signal
import time
from decimal import Decimal

import openai
import pytest

from gateway.app import Gateway
from gateway.recording import ProcessRecorder
from gateway.services import allow_upstream_host, set_provider_account
from ingest.models import LLMCall

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw_process(serve_gateway, org, provider, priced):
    allow_upstream_host(org, f"127.0.0.1:{provider.server_address[1]}")
    set_provider_account(org, "openai", base_url=provider.url + "/v1", api_key="sk-stored-openai")
    return serve_gateway(Gateway(recorder=ProcessRecorder()))


def wait_for_replacement(recorder: ProcessRecorder, old_pid: int) -> None:
    deadline = time.monotonic() + 20
    while (recorder.process.pid == old_pid or not recorder.process.is_alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert recorder.process.pid != old_pid and recorder.process.is_alive()


@pytest.mark.django_db(transaction=True)
def test_calls_are_priced_and_stored_by_a_process_of_their_own_exactly_once(gw_process, obs_key):
    oai = openai.OpenAI(base_url=gw_process.url + "/v1", api_key=obs_key, max_retries=0)
    for _ in range(8):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    for _ in range(2):
        list(oai.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))

    calls = gw_process.calls(10)
    recorder = gw_process.gateway.recorder
    assert recorder.process.pid != os.getpid() and recorder.process.is_alive()
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 10
    assert sum(call.streaming for call in calls) == 2
    assert len({(call.trace_id, call.span_id) for call in calls}) == 10
    assert {call.source for call in calls} == {"observatory-gateway"}


@pytest.mark.django_db(transaction=True)
def test_a_recording_process_that_dies_is_replaced_and_its_unconfirmed_calls_are_stored_once(gw_process, obs_key):
    oai = openai.OpenAI(base_url=gw_process.url + "/v1", api_key=obs_key, max_retries=0)
    recorder = gw_process.gateway.recorder
    for _ in range(3):
        oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    gw_process.calls(3)

    first = recorder.process.pid
    os.kill(first, signal.SIGSTOP)  # it takes nothing more off its pipe …
    answers = [oai.chat.completions.create(model="gpt-4o-mini", messages=HI) for _ in range(4)]
    time.sleep(0.3)
    assert LLMCall.objects.count() == 3 and recorder.pending == 4
    os.kill(first, signal.SIGKILL)  # … and dies with four calls sent to it and never confirmed

    wait_for_replacement(recorder, first)
    assert all(answer.choices[0].message.content for answer in answers)
    assert recorder.wait_idle(20)
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)  # the new process records the next calls too
    calls = gw_process.calls(8)
    assert len({(call.trace_id, call.span_id) for call in calls}) == 8
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 8


@pytest.mark.django_db(transaction=True)
def test_a_batch_stored_twice_by_two_recording_processes_counts_once(gw_process, obs_key):
    oai = openai.OpenAI(base_url=gw_process.url + "/v1", api_key=obs_key, max_retries=0)
    recorder = gw_process.gateway.recorder
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    gw_process.calls(2)
    with recorder._lock:  # as if the process had stored these batches and died before confirming them
        stored_again = dict(recorder._unacked)
    assert not stored_again  # confirmed batches are forgotten …
    first = recorder.process.pid
    os.kill(first, signal.SIGSTOP)
    oai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    time.sleep(0.3)
    with recorder._lock:
        unconfirmed = dict(recorder._unacked)
    assert len(unconfirmed) == 1  # … the unconfirmed one is kept to be sent again
    os.kill(first, signal.SIGCONT)  # it stores the batch and confirms it …
    assert recorder.wait_idle(20)
    with recorder._pipe_lock:  # … and is handed it again, as a new process is after a crash before the reply
        for data in unconfirmed.values():
            recorder._pipe.send_bytes(data[0])
    time.sleep(0.5)
    calls = gw_process.calls(3)
    assert len({(call.trace_id, call.span_id) for call in calls}) == 3
    assert sum(call.cost_usd for call in calls) == Decimal("0.0001542") * 3
