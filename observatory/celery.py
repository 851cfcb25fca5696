"""The Celery app: tasks are discovered in each Django app's tasks.py."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")

app = Celery("observatory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _mark_worker_ready(**_kwargs) -> None:
    """Touch a file the launcher waits for (remote `inspect ping` is not available on every broker)."""
    ready_file = os.environ.get("OBSERVATORY_WORKER_READY_FILE")
    if ready_file:
        with open(ready_file, "w") as handle:
            handle.write(str(os.getpid()))
