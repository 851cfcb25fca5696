"""Receiving one OTLP export, whatever carried it (OTLP/HTTP, OTLP/gRPC): authenticate, rate-limit, decode, store —
or, when the database cannot store it, keep it in the spool and answer success all the same.

Transports call `sender_for` (before reading the body: a bad key or an exhausted rate limit costs nothing) and
then `receive`; both raise RequestRejected with the status and message to answer. The spool (ingest.spool) is
applied through `apply_spooled`, the same decoding and storing as a live export. OTLP/HTTP trace exports are
answered before they are stored (`answer_first`): decoded, mapped and journaled (ingest.journal) first, so the
answer is as exact and the export as safe as if it had been stored; the process's writer thread then stores them,
several exports to one write (`store_answered`, ingest.write_behind).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection

from ingest import journal, otlp_decode, rate_limit, spool
from ingest.call_codec import calls_from_json, calls_to_json
from ingest.http import RequestRejected
from ingest.records import CallFields
from ingest.services import (
    IngestOutcome,
    PreparedWrite,
    ingest_log_records,
    ingest_metric_points,
    ingest_spans,
    map_export,
    prepare_write,
    store_calls,
    write_prepared,
)
from ingest.write_behind import Writer
from observatory.models import ApiKey
from observatory.services import authenticate_key_cached, parse_key_prefix

log = logging.getLogger(__name__)

OUTAGE = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class Sender:
    """Who sends: the key when the database could confirm it, else (during an outage) what identifies it — its
    prefix and hash, confirmed when the spooled export is applied."""

    api_key: ApiKey | None
    key_prefix: str
    key_sha256: bytes


@dataclass(frozen=True)
class Received:
    rejected: int  # records refused one by one (OTLP partial success)
    message: str
    spooled: bool = False
    after_answer: Callable[[], None] | None = None  # the store, when it waits for the answer to be sent


def sender_for(plaintext: str | None) -> Sender:
    """Authenticate and check the key's rate limit; raises RequestRejected (401, 429)."""
    if not plaintext:
        raise RequestRejected(401, "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
    prefix = parse_key_prefix(plaintext)
    if prefix is None:
        raise RequestRejected(401, "invalid or revoked API key")
    digest = hashlib.sha256(plaintext.encode()).digest()
    try:
        api_key = authenticate_key_cached(plaintext)
    except OUTAGE as exc:  # the key is checked when the spooled export is applied
        log.warning("database unavailable while authenticating an export: %s", str(exc).splitlines()[0][:200])
        return Sender(None, prefix, digest)
    if api_key is None:
        raise RequestRejected(401, "invalid or revoked API key")
    _within_rate(api_key, 0)
    return Sender(api_key, prefix, digest)


def _within_rate(api_key: ApiKey, records: int) -> None:
    """Charge the key's rate limit for `records` records (0: only check it is not exhausted); 429 when over."""
    wait = rate_limit.admit(api_key, records)
    if wait is not None:
        log.info("ingest rate limit: key %s refused for %s s", api_key.prefix, wait)
        raise RequestRejected(429, f"this API key is over its ingest rate limit; retry in {wait} s", retry_after=wait)


def _decode(signal: str, body: bytes, content_type: str):
    if signal == "calls":
        return calls_from_json(body)
    try:
        if signal == "traces":
            return otlp_decode.decode_traces(body, content_type)
        if signal == "metrics":
            return otlp_decode.decode_metrics(body, content_type)
        return otlp_decode.decode_logs(body, content_type)
    except otlp_decode.OtlpDecodeError as exc:
        raise RequestRejected(400, f"malformed OTLP body: {exc}") from None


def _records(signal: str, decoded) -> int:
    return len(decoded.spans if signal == "traces" else decoded.points if signal == "metrics" else decoded.records)


def _store(signal: str, api_key: ApiKey, decoded) -> Received:
    if signal == "calls":
        store_calls(api_key, decoded)
        return Received(0, "")
    if signal == "traces":
        outcome = ingest_spans(api_key, decoded.spans, decoded.rejected, decoded.errors)
        return Received(outcome.rejected, outcome.message)
    if signal == "metrics":
        return Received(*ingest_metric_points(api_key, decoded))
    return Received(*ingest_log_records(api_key, decoded))


def receive(sender: Sender, signal: str, body: bytes, content_type: str, answer_first: bool = False) -> Received:
    """Decode and store one export (already decompressed). When the database cannot take it, the export is
    spooled (durably, before this returns) and reported as received; past the spool's bound, 503.

    `answer_first` (OTLP/HTTP traces): once the spans are decoded and mapped, journal the export (ingest.journal)
    and leave the store to `Received.after_answer`, which the caller runs once its answer has been sent."""
    spool.resume_pending()
    decoded = _decode(signal, body, content_type)
    if sender.api_key is None:  # the database was away when the key was checked
        return _spool(sender, signal, body, content_type, decoded.rejected)
    _within_rate(sender.api_key, _records(signal, decoded))
    if answer_first and signal == "traces" and time.monotonic() - _outage_seen_at > OUTAGE_HOLD_SECONDS:
        return _answer_first(sender, body, content_type, decoded)
    return _store_or_spool(sender, signal, body, content_type, decoded.rejected,
                           lambda: _store(signal, sender.api_key, decoded))


def _store_or_spool(sender: Sender, signal: str, body: bytes, content_type: str, rejected: int,
                    store: Callable[[], Received]) -> Received:
    try:
        return store()
    except DataError as exc:
        log.warning("ingest write refused by the database: %s", exc)
        raise RequestRejected(400, f"the data could not be stored: {str(exc).splitlines()[0][:200]}") from None
    except OUTAGE as exc:
        log.warning("database unavailable during ingest, spooling the export: %s", str(exc).splitlines()[0][:200])
    except DatabaseError:
        log.exception("unexpected database error during ingest; spooling the export")
    global _outage_seen_at
    _outage_seen_at = time.monotonic()
    return _spool(sender, signal, body, content_type, rejected)


# After a store failed for want of a database, this process stores before answering for a while: the answer can
# then be a 503 with Retry-After once the spool is full, instead of a 200 for an export kept nowhere but its journal.
OUTAGE_HOLD_SECONDS = 60.0
_outage_seen_at = -OUTAGE_HOLD_SECONDS


def _answer_first(sender: Sender, body: bytes, content_type: str, decoded) -> Received:
    """Map the spans now (the answer says which were rejected), journal the export, store it after the answer."""
    calls, context, outcome = map_export(decoded.spans, decoded.rejected, decoded.errors)

    def store() -> Received:
        store_calls(sender.api_key, calls, context, outcome)
        return Received(outcome.rejected, outcome.message)

    if not calls and not context:
        return Received(outcome.rejected, outcome.message)
    export = spool.SpooledExport("traces", content_type, sender.key_prefix, sender.key_sha256, time.time_ns(), body)
    try:
        entry = journal.keep(export)
    except OSError as exc:
        log.warning("ingest journal unavailable (%s); storing the export before answering", exc)
        return _store_or_spool(sender, "traces", body, content_type, outcome.rejected, store)
    answered = Answered(sender, body, content_type, calls, context, outcome, entry)

    def after_answer() -> None:
        if settings.INGEST_BATCH_SECONDS > 0:
            writer.submit(answered, len(calls) + len(context))
        else:
            # No `SELECT 1` round trip before the store (CONN_HEALTH_CHECKS): on a connection the database dropped,
            # the store fails and the export goes to the spool; Django closes that connection when the request ends.
            connection.health_check_done = True
            store_answered([answered])

    return Received(outcome.rejected, outcome.message, after_answer=after_answer)


@dataclass(frozen=True)
class Answered:
    """A trace export answered for and journaled, waiting for its store."""

    sender: Sender
    body: bytes
    content_type: str
    calls: list[CallFields]
    context: list
    outcome: IngestOutcome
    entry: journal.Entry


def store_answered(batch: list[Answered]) -> None:
    """Store answered exports with one write (ingest.write_behind); when that fails, each on its own, as if it had
    come alone: stored, spooled, or refused by the database (and dropped, said in the log), never lost for another's
    sake. Each journal entry is done once its export is stored or spooled."""
    prepared: list[PreparedWrite | None] = [None] * len(batch)
    if len(batch) > 1:
        try:
            for index, item in enumerate(batch):
                prepared[index] = prepare_write(item.sender.api_key, item.calls, item.context)
            write_prepared(prepared)
        except Exception as exc:  # each export is tried on its own below, and says what failed
            log.warning("ingest: %s exports could not be written together (%s); writing each on its own",
                        len(batch), str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        else:
            for item in batch:
                item.entry.done()
            return
    for item, rows in zip(batch, prepared, strict=True):
        _store_one(item, rows)


def _store_one(item: Answered, rows: PreparedWrite | None) -> None:
    outcome = item.outcome

    def store() -> Received:
        if rows is None:
            store_calls(item.sender.api_key, item.calls, item.context, outcome)
        else:
            write_prepared([rows])
        return Received(outcome.rejected, outcome.message)

    try:
        _store_or_spool(item.sender, "traces", item.body, item.content_type, outcome.rejected, store)
    except RequestRejected as exc:  # the exporter has its answer: what is left is to say so in the log
        if exc.status >= 500:  # neither the database nor the spool could take it: the journal keeps it
            log.error("ingest: an export answered for is kept in the journal: %s", exc.message)
            item.entry.abandon()
            return
        log.error("ingest: an export answered for was refused by the database and dropped: %s", exc.message)
    except Exception:
        log.exception("ingest: an export answered for could not be stored; the journal keeps it")
        item.entry.abandon()
        return
    item.entry.done()


def _write_batch_in_thread(batch: list[Answered]) -> None:
    """The writer thread's store: its own database connection, checked only after a failure (a connection the
    database dropped fails the store, and the exports go to the spool) and renewed as a request's would be."""
    connection.health_check_done = True
    try:
        store_answered(batch)
    finally:
        connection.close_if_unusable_or_obsolete()


writer: Writer[Answered] = Writer(_write_batch_in_thread, lambda: settings.INGEST_BATCH_SECONDS,
                                   lambda: connection.close())


def _spool(sender: Sender, signal: str, body: bytes, content_type: str, rejected: int) -> Received:
    try:
        spool.append(signal, content_type, sender.key_prefix, sender.key_sha256, body)
    except spool.SpoolFull as exc:
        log.warning("ingest spool full: %s", exc)
        raise RequestRejected(503, "the database is unavailable and the ingest spool is full; retry later",
                              retry_after=30) from None
    except OSError as exc:
        log.error("ingest spool cannot be written (%s); refusing the export", exc)
        raise RequestRejected(503, "the database is unavailable; retry later", retry_after=5) from None
    message = f"{rejected} record(s) rejected" if rejected else ""
    return Received(rejected, message, spooled=True)


def store_or_spool_calls(api_key: ApiKey, calls: list[CallFields]) -> bool:
    """Store calls that arrive already normalized (the gateway's), exactly as an export's; while the database is
    away, keep them in the spool (durably) to be applied later through the same path. True when stored now, False
    when spooled; raises spool.SpoolFull or OSError when they can be kept nowhere."""
    try:
        store_calls(api_key, calls)
        return True
    except OUTAGE as exc:
        log.warning("database unavailable, spooling %s call(s): %s", len(calls), str(exc).splitlines()[0][:200])
    spool.append("calls", "application/json", api_key.prefix, bytes.fromhex(api_key.key_hash), calls_to_json(calls))
    return False


def _key_for(record: spool.SpooledExport) -> ApiKey | None:
    api_key = (ApiKey.objects.select_related("organization", "default_team", "default_product")
               .filter(prefix=record.key_prefix, revoked_at=None).first())
    if api_key is None or not hmac.compare_digest(bytes.fromhex(api_key.key_hash), record.key_sha256):
        return None
    return api_key


def apply_spooled(record: spool.SpooledExport) -> None:
    """Store one spooled export as if it arrived now (idempotent: applying it twice counts once). Raises while the
    database is away, so the drain stops and tries again; any other failure loses this export only, and says so."""
    try:
        api_key = _key_for(record)
        if api_key is None:
            log.warning("ingest spool: an export of %s bytes for key %s… is dropped: the key is revoked or unknown",
                        len(record.body), record.key_prefix)
            return
        _store(record.signal, api_key, _decode(record.signal, record.body, record.content_type))
    except OUTAGE:
        raise
    except Exception:  # one bad export must not hold up the ones behind it
        log.exception("ingest spool: an export of %s bytes for key %s… could not be applied and is dropped",
                      len(record.body), record.key_prefix)
