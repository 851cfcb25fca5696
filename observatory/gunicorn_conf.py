"""gunicorn settings used by `observatory up` and docker-compose's web service: keep the garbage collector off the
ingest hot path, and have each new worker pick up what a dead one had answered for but not stored."""

import gc


def post_worker_init(worker) -> None:
    """After Django is loaded: move everything alive now out of the collector's way, and collect
    young objects less often (ingest allocates many short-lived objects per request)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # A worker that replaces a killed one (timeout, out of memory) moves the exports it had journaled but not
    # stored into the spool now, rather than at the next export (ingest.journal).
    from ingest import spool

    spool.resume_pending()
