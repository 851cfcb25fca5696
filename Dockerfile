# One image for web, the OTLP/gRPC receiver, worker and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=observatory.settings \
    OBSERVATORY_HOME=/var/lib/observatory

RUN groupadd --system observatory \
    && useradd --system --gid observatory --home-dir /var/lib/observatory --create-home observatory \
    && install -d -o observatory -g observatory /var/lib/observatory/run

WORKDIR /app

COPY pyproject.toml setup.py README.md manage.py ./
COPY sdk ./sdk
COPY observatory ./observatory
COPY ingest ./ingest
COPY billing ./billing
COPY gateway ./gateway
COPY templates ./templates
# Installed in place (editable), as the README installs it: every process runs the code in /app (manage.py,
# gunicorn and Celery put it first on the path; so does the `observatory` command), templates included, and the
# optional C modules (ingest's trace decoder, the SDK's writer) are built next to it. A C compiler only meanwhile.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -e . -e ./sdk \
    && python -c "from ingest.otlp_decode import _spans; from observatory_sdk import _speedups" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

# Static files are collected at build time and served by WhiteNoise; no database is needed for this.
RUN python manage.py collectstatic --noinput

USER observatory
EXPOSE 8000
EXPOSE 4317
CMD ["gunicorn", "observatory.wsgi:application", "-b", "0.0.0.0:8000", "-w", "4"]
