"""Answered trace exports stored in batches by the web process's writer thread (ingest.write_behind): several
exports to one write, each journal slot done once its export is committed, and a batch that cannot be written
as a whole written export by export, so that one export the database refuses (or an outage) costs no other."""

import threading
import time

import pytest
from django.db import OperationalError, connection
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import journal, receiver, spool, store, write_behind
from ingest.models import LLMCall
from ingest.receiver import apply_spooled
from tests.ingest.test_otlp_http import CHAT, make_request


@pytest.fixture(autouse=True)
def batching(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SPOOL_DRAIN_IN_BACKGROUND = False  # the tests drain by hand
    settings.INGEST_BATCH_SECONDS = 30  # a batch gathers until the test flushes it
    yield tmp_path / "spool"
    receiver.writer.flush(30)
    receiver.writer.idle(30)  # its database connection is closed before the test database goes


@pytest.fixture
def write_calls(monkeypatch):
    """The number of writes (`store.write_batch` calls) made; each still writes for real."""
    calls = []
    real = store.write_batch

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_batch", counted)
    return calls


def _export(count, **attributes):
    return make_request([dict(CHAT, **attributes)] * count).SerializeToString()


def _slot_states(spool_dir):
    return sorted(path.read_bytes()[:1] for path in (spool_dir / "inflight").glob("*.journal"))


@pytest.mark.django_db(transaction=True)
def test_exports_answered_one_after_another_are_written_together(post_otlp, batching, write_calls):
    bad = dict(CHAT, **{"gen_ai.usage.input_tokens": -5})
    first = post_otlp(body=make_request([CHAT, CHAT, bad]).SerializeToString())
    assert ExportTraceServiceResponse.FromString(first.content).partial_success.rejected_spans == 1
    assert post_otlp(body=_export(3)).status_code == 200
    assert post_otlp(body=_export(4)).status_code == 200
    assert LLMCall.objects.count() == 0  # answered and journaled; the batch is still gathering
    assert _slot_states(batching) == [journal.PENDING] * 3

    assert receiver.writer.flush(30)
    assert LLMCall.objects.count() == 9
    assert write_calls == [9]  # one write for the three exports
    assert _slot_states(batching) == [journal.DONE] * 3
    assert post_otlp(body=_export(4)).status_code == 200  # slots are reused once done
    assert receiver.writer.flush(30) and len(_slot_states(batching)) == 3


@pytest.mark.django_db(transaction=True)
def test_an_export_the_database_refuses_costs_no_other_export_of_its_batch(post_otlp, batching, write_calls):
    with connection.cursor() as cursor:  # the database itself refuses one model's rows
        cursor.execute("ALTER TABLE ingest_llmcall ADD CONSTRAINT test_refused CHECK (request_model <> 'refused')")
    try:
        assert post_otlp(body=_export(2)).status_code == 200
        assert post_otlp(body=_export(3, **{"gen_ai.request.model": "refused"})).status_code == 200
        assert post_otlp(body=_export(4)).status_code == 200
        assert receiver.writer.flush(30)
        assert sorted(LLMCall.objects.values_list("request_model", flat=True).distinct()) == ["gpt-4o-mini"]
        assert LLMCall.objects.count() == 6  # the other two exports, each stored once
        assert write_calls[0] == 9 and sorted(write_calls[1:]) == [2, 3, 4]  # together, then one by one
        assert _slot_states(batching) == [journal.DONE] * 3
        assert spool.state().pending_bytes > 0  # the refused export is kept, as a failed store always was
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ingest_llmcall DROP CONSTRAINT test_refused")


@pytest.mark.django_db(transaction=True)
def test_an_outage_during_a_batch_sends_each_of_its_exports_to_the_spool_once(post_otlp, batching, monkeypatch):
    real = receiver.write_prepared

    def database_gone(*args, **kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(receiver, "write_prepared", database_gone)
    for count in (1, 2, 3):
        assert post_otlp(body=_export(count)).status_code == 200
    assert receiver.writer.flush(30)
    assert LLMCall.objects.count() == 0 and spool.state().pending_bytes > 0
    assert _slot_states(batching) == [journal.DONE] * 3  # in the spool now: the journal is done with them
    monkeypatch.setattr(receiver, "write_prepared", real)
    assert spool.drain(apply_spooled) == 3
    assert LLMCall.objects.count() == 6


def test_a_batch_gathers_what_arrives_within_the_window_up_to_its_row_limit(monkeypatch):
    monkeypatch.setattr(write_behind, "BATCH_ROWS", 10)
    batches = []
    writer = write_behind.Writer(batches.append, lambda: 30.0)
    for item in range(4):
        writer.submit(item, 4)  # the third makes 12 rows: the batch goes without waiting for the window
    deadline = time.monotonic() + 10
    while not batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batches[0] in ([0, 1, 2], [0, 1, 2, 3])
    assert writer.flush(10)
    assert [item for batch in batches for item in batch] == [0, 1, 2, 3]
    assert writer.pending() == 0


@pytest.mark.parametrize("limit, rows", [("MAX_QUEUED_ROWS", 5), ("MAX_QUEUED_EXPORTS", 1)])
def test_a_full_queue_makes_the_request_thread_wait_for_the_writer(monkeypatch, limit, rows):
    """Full by rows, or by exports (each holds a journal slot, an open file, until it is written)."""
    monkeypatch.setattr(write_behind, limit, 1 if limit == "MAX_QUEUED_EXPORTS" else 5)
    release = threading.Event()
    written = []

    def slow_write(batch):
        release.wait(10)
        written.extend(batch)

    writer = write_behind.Writer(slow_write, lambda: 0.0)
    writer.submit("a", rows)  # taken by the writer, which is stuck on the database
    deadline = time.monotonic() + 10
    while writer.pending() != 1 and time.monotonic() < deadline:  # only the batch being written is left
        time.sleep(0.01)
    writer.submit("b", rows)  # queued: the queue is now full
    blocked = threading.Thread(target=writer.submit, args=("c", 1))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # it waits instead of growing the queue
    release.set()
    blocked.join(10)
    assert not blocked.is_alive()
    assert writer.flush(10) and written == ["a", "b", "c"]


@pytest.mark.django_db(transaction=True)
def test_an_export_sent_twice_within_one_batch_is_counted_once(post_otlp, batching, write_calls):
    """An exporter that timed out sends the same export again at once: both land in the same batch."""
    body = _export(3)
    assert post_otlp(body=body).status_code == 200
    assert post_otlp(body=body).status_code == 200
    assert post_otlp(body=_export(2)).status_code == 200
    assert receiver.writer.flush(30)
    assert LLMCall.objects.count() == 5
    assert write_calls == [8]  # one write: the repeated rows are skipped there, not by a write of their own
    assert _slot_states(batching) == [journal.DONE] * 3
