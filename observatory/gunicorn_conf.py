"""gunicorn settings used by `observatory up`: keep the garbage collector off the ingest hot path."""

import gc


def post_worker_init(worker) -> None:
    """After Django is loaded: move everything alive now out of the collector's way, and collect
    young objects less often (ingest allocates many short-lived objects per request)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
