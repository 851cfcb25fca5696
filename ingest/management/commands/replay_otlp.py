"""`replay_otlp <dir-or-file> --key <api key>`: feed saved OTLP export bodies through the ingest path."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ingest import otlp_decode
from ingest.services import ingest_log_records, ingest_metric_points, ingest_spans
from observatory.models import ApiKey
from observatory.services import authenticate_key


def signal_of(path: Path) -> str:
    name = path.name
    if ".metrics." in name:
        return "metrics"
    if ".logs." in name:
        return "logs"
    return "traces"


def content_type_of(path: Path) -> str:
    stem = path.name.removesuffix(".gz")
    return "application/json" if stem.endswith(".json") else "application/x-protobuf"


def bodies_under(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(
        p for p in target.rglob("*")
        if p.is_file() and p.name.removesuffix(".gz").endswith((".pb", ".json"))
        and not p.name.endswith(".decoded.json") and p.name not in {"index.json"}
    )


class Command(BaseCommand):
    help = "Replay OTLP/HTTP bodies (.pb, .json, optionally .gz) into the database, as the receiver would."

    def add_arguments(self, parser):
        parser.add_argument("target", help="a body file or a directory of them")
        parser.add_argument("--key", help="API key whose organization and defaults receive the data")
        parser.add_argument("--key-prefix", help="alternatively, the prefix of an existing key")

    def handle(self, *args, **options):
        api_key = self._key(options)
        target = Path(options["target"])
        if not target.exists():
            raise CommandError(f"{target} does not exist")
        paths = bodies_under(target)
        if not paths:
            raise CommandError(f"no OTLP bodies (*.pb, *.json, *.gz) under {target}")
        totals = {"calls": 0, "duplicates": 0, "context": 0, "rejected": 0, "failed": 0}
        for number, path in enumerate(paths, 1):
            try:
                self._replay(api_key, path, totals)
            except (otlp_decode.OtlpDecodeError, OSError, EOFError) as exc:
                totals["failed"] += 1
                self.stderr.write(f"\n{path}: {exc}")
            self._progress(number, len(paths))
        self.stderr.write("\n")
        self.stdout.write(
            f"replayed {len(paths)} bodies: {totals['calls']} new calls, {totals['duplicates']} already stored, "
            f"{totals['context']} context spans, {totals['rejected']} rejected, {totals['failed']} unreadable"
        )

    def _key(self, options) -> ApiKey:
        if options["key"]:
            api_key = authenticate_key(options["key"])
            if api_key is None:
                raise CommandError("that API key is invalid or revoked")
            return api_key
        if options["key_prefix"]:
            api_key = ApiKey.objects.filter(prefix=options["key_prefix"], revoked_at=None).first()
            if api_key is None:
                raise CommandError(f"no active API key with prefix {options['key_prefix']!r}")
            return api_key
        raise CommandError("give --key <api key> (or --key-prefix <prefix>) to say whose data this is")

    def _replay(self, api_key: ApiKey, path: Path, totals: dict) -> None:
        body = path.read_bytes()
        if path.suffix == ".gz":
            body = gzip.decompress(body)
        content_type = content_type_of(path)
        kind = signal_of(path)
        if kind == "traces":
            decoded = otlp_decode.decode_traces(body, content_type)
            outcome = ingest_spans(api_key, decoded.spans, decoded.rejected, decoded.errors)
            totals["calls"] += outcome.calls_inserted
            totals["duplicates"] += outcome.calls_duplicate
            totals["context"] += outcome.context_spans
            totals["rejected"] += outcome.rejected
        elif kind == "metrics":
            totals["rejected"] += ingest_metric_points(api_key, otlp_decode.decode_metrics(body, content_type))[0]
        else:
            totals["rejected"] += ingest_log_records(api_key, otlp_decode.decode_logs(body, content_type))[0]

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
