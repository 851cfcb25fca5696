"""ASGI entry point of the gateway process (`observatory gateway`, uvicorn): Django set up, then the app."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
django.setup()

from gateway.app import build_app  # noqa: E402 (needs Django set up)

application = build_app()
