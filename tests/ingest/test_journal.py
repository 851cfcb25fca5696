"""Trace exports answered before they are stored: the answer is as exact as before (partial success), the export is
journaled (fsync'd) before the answer, stored right after it, and a process that dies in between loses nothing:
what it left pending is moved into the spool and applied once."""

import hashlib
import logging
import multiprocessing

import psycopg
import pytest
from django.db import OperationalError, connection
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import journal, receiver, services, spool
from ingest.models import LLMCall
from ingest.receiver import apply_spooled
from tests.ingest.test_otlp_http import CHAT, make_request

PROTOBUF = "application/x-protobuf"


@pytest.fixture(autouse=True)
def own_spool(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SPOOL_DRAIN_IN_BACKGROUND = False  # the tests drain by hand
    yield tmp_path / "spool"


def _export(count=3):
    return make_request([CHAT] * count).SerializeToString()


def _slots(own_spool):
    return sorted((own_spool / "inflight").glob("*.journal"))


@pytest.mark.django_db(transaction=True)
def test_an_export_is_stored_once_answered_and_its_journal_slot_is_marked_done(post_otlp, own_spool):
    bad = dict(CHAT, **{"gen_ai.usage.input_tokens": -5})  # a span whose usage is garbage: rejected by the mapper
    response = post_otlp(body=make_request([CHAT, CHAT, bad]).SerializeToString())
    assert response.status_code == 200
    reply = ExportTraceServiceResponse.FromString(response.content)
    assert reply.partial_success.rejected_spans == 1  # the answer still says which spans were refused
    assert LLMCall.objects.count() == 2  # stored by the time the exporter could look
    (slot,) = _slots(own_spool)
    assert slot.read_bytes()[:1] == journal.DONE
    assert post_otlp(body=_export(2)).status_code == 200
    assert _slots(own_spool) == [slot]  # the slot is reused: one per export in flight, not one per export
    assert LLMCall.objects.count() == 4


def _answer_and_die(data_dir: str, key_prefix: str, key_sha256: bytes, body: bytes) -> None:
    """A web process that has journaled an export and answered it, killed before the store."""
    import os

    from django.conf import settings

    settings.DATA_DIR = data_dir
    journal.keep(spool.SpooledExport("traces", PROTOBUF, key_prefix, key_sha256, 0, body))
    os._exit(0)


@pytest.mark.django_db(transaction=True)
def test_an_export_answered_by_a_process_that_died_before_storing_it_is_stored_once(own_spool, api_key, post_otlp):
    body = _export(3)
    digest = hashlib.sha256(api_key.plaintext.encode()).digest()
    process = multiprocessing.get_context("fork").Process(
        target=_answer_and_die, args=(str(own_spool.parent), api_key.api_key.prefix, digest, body))
    process.start()
    process.join(30)
    assert process.exitcode == 0 and len(_slots(own_spool)) == 1
    assert LLMCall.objects.count() == 0

    assert journal.recover() == 1  # its slot is held by no one: the export moves into the spool
    assert _slots(own_spool) == [] and journal.recover() == 0
    assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 3
    assert post_otlp(body=body).status_code == 200  # had the exporter sent it again, nothing is counted twice
    assert LLMCall.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_slot_of_a_live_process_is_left_alone(own_spool, api_key):
    entry = journal.keep(spool.SpooledExport("traces", PROTOBUF, api_key.api_key.prefix, b"\0" * 32, 0, _export(1)))
    assert journal.recover() == 0  # this process holds it: its store is still to come
    assert len(_slots(own_spool)) == 1 and spool.state().pending_bytes == 0
    entry.done()


@pytest.mark.django_db(transaction=True)
def test_a_store_that_fails_after_the_answer_goes_to_the_spool(post_otlp, monkeypatch, own_spool):
    real = services.store_calls

    def database_gone(*args, **kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(receiver, "store_calls", database_gone)
    assert post_otlp(body=_export(3)).status_code == 200
    assert LLMCall.objects.count() == 0 and spool.state().pending_bytes > 0
    assert _slots(own_spool)[0].read_bytes()[:1] == journal.DONE  # in the spool now: the journal is done with it
    monkeypatch.setattr(receiver, "store_calls", real)
    assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_when_neither_database_nor_spool_can_take_it_the_journal_keeps_it(post_otlp, monkeypatch, own_spool,
                                                                            settings, caplog):
    def database_gone(*args, **kwargs):
        raise OperationalError("gone")

    monkeypatch.setattr(receiver, "store_calls", database_gone)  # the store after the answer
    monkeypatch.setattr(services, "store_calls", database_gone)  # the store before it
    settings.SPOOL_MAX_BYTES = 10  # the spool is full
    with caplog.at_level(logging.ERROR, logger="ingest"):
        assert post_otlp(body=_export(2)).status_code == 200
    assert "kept in the journal" in caplog.text
    (slot,) = _slots(own_spool)
    assert slot.read_bytes()[:1] == journal.PENDING
    refused = post_otlp(body=_export(1))  # having seen the outage, the process stores before it answers again
    assert refused.status_code == 503 and refused["Retry-After"]
    assert _slots(own_spool) == [slot]  # the pending slot is kept, and not reused


@pytest.mark.django_db(transaction=True)
def test_without_a_usable_journal_the_export_is_stored_before_the_answer(post_otlp, own_spool, caplog):
    own_spool.mkdir(parents=True)
    (own_spool / "inflight").write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="ingest"):
        assert post_otlp(body=_export(3)).status_code == 200
    assert "storing the export before answering" in caplog.text
    assert LLMCall.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_costs_a_spool_round_not_the_export(post_otlp, own_spool):
    """The store after the answer does not ping the connection first: when the database has dropped it, the export
    goes to the spool and is applied from there, once."""
    assert post_otlp(body=_export(1)).status_code == 200
    backend = connection.connection.info.backend_pid  # the connection the next request reuses
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend])
    assert post_otlp(body=_export(2)).status_code == 200
    connection.close()  # the test client keeps the request's connection open; a server would close it here
    assert LLMCall.objects.count() == 1 and spool.state().pending_bytes > 0
    assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 3
