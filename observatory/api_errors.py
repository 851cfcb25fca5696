"""REST API error responses: a database outage is a 503 with Retry-After, never a 500."""

import logging

from django.db import DatabaseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, DatabaseError):
        log.warning("database unavailable during API request: %s", exc)
        return Response(
            {"detail": "The database is unavailable; retry shortly."}, status=503, headers={"Retry-After": "5"}
        )
    return drf_exception_handler(exc, context)
