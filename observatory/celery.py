"""The Celery app: tasks are discovered in each Django app's tasks.py."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")

app = Celery("observatory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue(task, *args, **kwargs):
    """`task.delay(...)`, first creating the embedded (filesystem) broker's folders if they are missing: a web
    process started on its own may queue work before any worker made them. Broker errors propagate."""
    from django.conf import settings

    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
    return task.delay(*args, **kwargs)


@worker_ready.connect
def _mark_worker_ready(**_kwargs) -> None:
    """Touch a file the launcher waits for (remote `inspect ping` is not available on every broker)."""
    ready_file = os.environ.get("OBSERVATORY_WORKER_READY_FILE")
    if ready_file:
        with open(ready_file, "w") as handle:
            handle.write(str(os.getpid()))
