"""ASGI entry point of the gateway process (`observatory gateway`, uvicorn): Django set up, then the app."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
django.setup()

from gateway.app import Gateway, build_app  # noqa: E402 (needs Django set up)
from gateway.recording import ProcessRecorder  # noqa: E402

# Calls are priced and stored in a recording process of their own, so the event loop never waits on that work
application = build_app(Gateway(recorder=ProcessRecorder()))
