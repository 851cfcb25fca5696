"""WSGI entry point for gunicorn: OTLP exports take a short path through Django, every other URL the whole stack."""

import os

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")

# The OTLP receiver's URLs (ingest.urls): exporters post to them many times a second.
EXPORT_PATHS = frozenset(("/v1/traces", "/v1/metrics", "/v1/logs", "/api/public/otel/v1/traces"))


class ExportHandler(WSGIHandler):
    """Django's handler with only the middleware that acts on an OTLP export: HTTPS redirect and security headers,
    ALLOWED_HOSTS, X-Frame-Options. The rest of settings.MIDDLEWARE has nothing to do there: the views are
    CSRF-exempt and authenticate by API key (no session, user or messages), static files and htmx are page
    concerns, and the login throttle watches logins. Saves about 0.2 ms of CPU per export."""

    MIDDLEWARE = (
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    )

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(self.MIDDLEWARE):
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


django_application = get_wsgi_application()
export_application = ExportHandler()


def application(environ, start_response):
    handler = export_application if environ.get("PATH_INFO") in EXPORT_PATHS else django_application
    return handler(environ, start_response)
