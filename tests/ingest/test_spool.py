"""The ingest spool: while the database is away an export is kept on disk (fsync'd) and answered as received;
once the database is back it is applied once — replays, crashes mid-drain and restarts never double count."""

import logging
import multiprocessing
import time
from contextlib import contextmanager

import pytest
from django.db import connection
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest import spool
from ingest.models import LLMCall, TraceSpan
from ingest.receiver import apply_spooled
from tests.ingest.test_otlp_http import CHAT, make_request


@pytest.fixture(autouse=True)
def own_spool(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.SPOOL_DRAIN_IN_BACKGROUND = False  # the tests drain by hand
    yield tmp_path / "spool"


@contextmanager
def database_down(tmp_path):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict["HOST"] = str(tmp_path)  # no server listens here
    connection.settings_dict["PORT"] = "5999"
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def _export(count=3, trace=None):
    return make_request([CHAT] * count, trace_id=trace).SerializeToString()


@pytest.mark.django_db(transaction=True)
def test_an_export_during_an_outage_is_answered_200_and_stored_once_the_database_is_back(post_otlp, tmp_path):
    body = _export(3)
    with database_down(tmp_path):
        response = post_otlp(body=body)
        assert response.status_code == 200
        assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
        waiting = spool.state()
        assert waiting.pending_bytes > len(body) and waiting.segments == 1
        with pytest.raises(Exception):
            spool.drain(apply_spooled)
    assert LLMCall.objects.count() == 0
    assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 3
    assert spool.state().pending_bytes == 0
    assert spool.drain(apply_spooled) == 0
    assert post_otlp(body=body).status_code == 200  # the exporter's own retry of the same export
    assert LLMCall.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_crash_mid_drain_repeats_at_most_one_export_and_counts_it_once(post_otlp, tmp_path, own_spool):
    with database_down(tmp_path):
        for _ in range(4):
            assert post_otlp(body=_export(2)).status_code == 200
    applied = []

    def dies_after_two(record):
        if len(applied) == 2:
            raise KeyboardInterrupt("web process killed")
        apply_spooled(record)
        applied.append(record)

    with pytest.raises(KeyboardInterrupt):
        spool.drain(dies_after_two)
    assert LLMCall.objects.count() == 4
    (segment,) = own_spool.glob("*.spool")
    segment.with_suffix(".done").write_text("0")  # even a drain that lost its progress entirely
    assert spool.drain(apply_spooled) == 4
    assert LLMCall.objects.count() == 8 and TraceSpan.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_export_for_a_key_that_is_not_valid_is_dropped_when_applied(post_otlp, tmp_path, caplog):
    with database_down(tmp_path):
        assert post_otlp(body=_export(1), key="obs_aaaaaaaaaaaa_not-a-real-key").status_code == 200
    with caplog.at_level(logging.WARNING):
        assert spool.drain(apply_spooled) == 1
    assert LLMCall.objects.count() == 0
    assert any("revoked or unknown" in record.getMessage() for record in caplog.records)
    assert post_otlp(body=_export(1), key="not-even-a-key").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_past_its_bound_the_spool_refuses_with_503_and_retry_after(post_otlp, tmp_path, settings):
    settings.SPOOL_MAX_BYTES = 1500
    with database_down(tmp_path):
        assert post_otlp(body=_export(1)).status_code == 200
        refused = post_otlp(body=_export(20))
    assert refused.status_code == 503 and refused["Retry-After"] == "30"
    assert "spool is full" in status_pb2.Status.FromString(refused.content).message
    assert spool.drain(apply_spooled) == 1 and LLMCall.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_restarted_process_applies_what_an_earlier_one_left(post_otlp, tmp_path, settings, monkeypatch):
    """Exports spooled by a process that is gone are applied by the next one to receive an export, by itself."""
    with database_down(tmp_path):
        assert post_otlp(body=_export(3)).status_code == 200
    settings.SPOOL_DRAIN_IN_BACKGROUND = True
    monkeypatch.setattr(spool, "DRAIN_INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(spool, "_resumed_in_pid", 0)  # as in a new process
    assert post_otlp(body=_export(1)).status_code == 200
    deadline = time.monotonic() + 20
    while (LLMCall.objects.count() < 4 or spool.state().pending_bytes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert LLMCall.objects.count() == 4 and spool.state().pending_bytes == 0
    settings.SPOOL_DRAIN_IN_BACKGROUND = False  # the drainer stops at its next turn
    spool._drainer.join(5)
    assert not spool._drainer.is_alive()


def test_a_torn_last_record_is_not_applied(own_spool):
    spool.append("traces", "application/json", "abcdefabcdef", b"\0" * 32, b'{"resourceSpans": []}')
    (segment,) = own_spool.glob("*.spool")
    whole = segment.read_bytes()
    segment.write_bytes(whole + whole[:-5])  # a second record cut short (a crash mid-write, never answered)
    assert [record.body for _, record in spool.read_records(segment)] == [b'{"resourceSpans": []}']


def _append_many(directory_parent: str, worker: int) -> None:
    from django.conf import settings

    settings.DATA_DIR = directory_parent
    for index in range(50):
        spool.append("traces", "application/json", "abcdefabcdef", b"\1" * 32, f"{worker}:{index}".encode() * 100)


def test_processes_append_whole_records_side_by_side(own_spool):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(own_spool.parent), worker)) for worker in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(30)
        assert process.exitcode == 0
    bodies = [record.body for segment in sorted(own_spool.glob("*.spool")) for _, record in spool.read_records(segment)]
    assert sorted(bodies) == sorted(f"{w}:{i}".encode() * 100 for w in range(3) for i in range(50))
    for worker in range(3):  # each process's records in the order it wrote them
        mine = [body for body in bodies if body.startswith(f"{worker}:".encode())]
        assert mine == [f"{worker}:{i}".encode() * 100 for i in range(50)]
