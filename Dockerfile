# One image for web, the OTLP/gRPC receiver, worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=observatory.settings \
    OBSERVATORY_HOME=/var/lib/observatory

RUN groupadd --system observatory \
    && useradd --system --gid observatory --home-dir /var/lib/observatory --create-home observatory

WORKDIR /app

COPY pyproject.toml README.md manage.py ./
COPY sdk ./sdk
COPY observatory ./observatory
COPY ingest ./ingest
COPY billing ./billing
COPY templates ./templates
RUN pip install . ./sdk

# Static files are collected at build time and served by WhiteNoise; no database is needed for this.
RUN python manage.py collectstatic --noinput

USER observatory
EXPOSE 8000
EXPOSE 4317
CMD ["gunicorn", "observatory.wsgi:application", "-b", "0.0.0.0:8000", "-w", "4"]
