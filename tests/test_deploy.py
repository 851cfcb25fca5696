"""docker-compose.yml, the Dockerfile and the collector config, read as files (no Docker engine needed)."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPORTER_TYPES = {"otlp_http", "otlphttp"}  # otlphttp: the alias before collector 0.144
GRPC_EXPORTER_TYPES = {"otlp_grpc", "otlp"}  # otlp: the alias before collector 0.144


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def collector():
    return yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())


def exporter_of(collector):
    names = [name for name in collector["exporters"] if name.split("/")[0] in EXPORTER_TYPES]
    assert len(names) == 1
    return names[0]


def published(service):
    """Published ports as "host:container" strings."""
    return {str(port) for port in service.get("ports", [])}


def test_it_defines_every_service(compose):
    assert {"postgres", "redis", "web", "grpc", "gateway", "worker", "beat", "otel-collector"} <= set(compose["services"])


def test_it_publishes_the_web_port(compose):
    assert published(compose["services"]["web"]) == {"8000:8000"}


def test_it_serves_the_django_project_with_gunicorn(compose):
    command = compose["services"]["web"]["command"]
    assert command[:2] == ["gunicorn", "observatory.wsgi:application"]
    assert "0.0.0.0:8000" in command
    assert command[command.index("--config") + 1] == "python:observatory.gunicorn_conf"  # as `observatory up` runs it


def test_it_runs_celery_worker_and_database_beat(compose):
    assert compose["services"]["worker"]["command"][:4] == ["celery", "-A", "observatory", "worker"]
    beat = compose["services"]["beat"]["command"]
    assert beat[:4] == ["celery", "-A", "observatory", "beat"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in beat


def test_it_serves_otlp_grpc_on_4317_inside_the_network(compose):
    service = compose["services"]["grpc"]
    assert service["image"] == compose["services"]["web"]["image"]
    assert service["command"] == ["python", "manage.py", "grpc", "--host", "0.0.0.0", "--port", "4317"]
    assert [str(port) for port in service["expose"]] == ["4317"]
    assert "ports" not in service  # the host's 4317 is the Collector's
    assert "grpc_health" in " ".join(service["healthcheck"]["test"])


def test_it_serves_the_gateway_on_4000_with_its_own_spool(compose):
    service = compose["services"]["gateway"]
    assert service["image"] == compose["services"]["web"]["image"]
    assert service["command"] == ["python", "manage.py", "gateway", "--host", "0.0.0.0", "--port", "4000"]
    assert published(service) == {"4000:4000"}
    assert "gateway-data:/var/lib/observatory" in service["volumes"] and "gateway-data" in compose["volumes"]
    assert "127.0.0.1:4000/healthz" in " ".join(service["healthcheck"]["test"])


def test_web_and_gateway_share_the_key_that_encrypts_provider_keys(compose):
    for name in ("web", "gateway"):
        env = compose["services"][name]["environment"]
        assert env["OBSERVATORY_GATEWAY_SECRET_KEY"].startswith("${OBSERVATORY_GATEWAY_SECRET_KEY:?")


def test_it_points_the_app_at_postgres_and_redis(compose):
    for name in ("web", "grpc", "gateway", "worker", "beat"):
        env = compose["services"][name]["environment"]
        assert re.fullmatch(r"postgresql://observatory:.+@postgres:5432/observatory", env["DATABASE_URL"])
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["DJANGO_ENV"] == "production"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_it_migrates_before_the_app_starts(compose):
    services = compose["services"]
    assert "migrate" in services["migrate"]["command"]
    for name in ("web", "grpc", "gateway", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_it_checks_postgres_health_and_keeps_its_data(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:17"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])


def test_it_keeps_the_web_ingest_spool_on_a_volume(compose):
    """Exports accepted while PostgreSQL is away wait in $OBSERVATORY_HOME/spool: it must survive the container."""
    web = compose["services"]["web"]
    assert "web-data:/var/lib/observatory" in web["volumes"]
    assert "grpc-data:/var/lib/observatory" in compose["services"]["grpc"]["volumes"]
    assert {"web-data", "grpc-data"} <= set(compose["volumes"])


def test_http_and_grpc_ingest_share_the_rate_limits(compose):
    """ingest.rate_limit keeps each key's bucket in $OBSERVATORY_HOME/run: one volume there for both receivers,
    or a key sending over both would get the limit twice."""
    for name in ("web", "grpc"):
        assert "ingest-limits:/var/lib/observatory/run" in compose["services"][name]["volumes"]
    assert "ingest-limits" in compose["volumes"]
    # a new named volume takes the owner of the image's directory it is mounted on: the app's user, not root
    assert "install -d -o observatory -g observatory /var/lib/observatory/run" in (ROOT / "Dockerfile").read_text()


def test_it_lets_the_collector_reach_the_app_by_service_name(compose):
    assert "web" in compose["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")


def test_it_publishes_the_collector_otlp_ports(compose):
    assert published(compose["services"]["otel-collector"]) == {"4317:4317", "4318:4318"}


def test_it_pins_the_collector_image(compose):
    image = compose["services"]["otel-collector"]["image"]
    assert re.fullmatch(r"otel/opentelemetry-collector-contrib:\d+\.\d+\.\d+", image)


def test_it_mounts_the_collector_config(compose):
    service = compose["services"]["otel-collector"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in service["volumes"]}
    target = mounts["./deploy/otel-collector.yaml"]
    assert f"--config={target}" in service["command"]
    assert (ROOT / "deploy" / "otel-collector.yaml").is_file()
    assert "OBSERVATORY_API_KEY" in service["environment"]


def test_it_receives_otlp_over_grpc_and_http(collector):
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


def test_it_sends_every_signal_to_observatory(collector):
    exporter = exporter_of(collector)
    pipelines = collector["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter"
        assert "batch" in pipeline["processors"]
        assert pipeline["exporters"][-1] == exporter


def test_it_exports_to_the_web_service_on_port_8000(collector):
    config = collector["exporters"][exporter_of(collector)]
    assert config["endpoint"] == "http://web:8000"
    assert config["compression"] == "gzip"
    assert config["retry_on_failure"]["enabled"] is True
    assert config["sending_queue"]["enabled"] is True


def test_it_can_forward_over_grpc_to_the_grpc_service_instead(collector):
    (name,) = [name for name in collector["exporters"] if name.split("/")[0] in GRPC_EXPORTER_TYPES]
    config = collector["exporters"][name]
    assert config["endpoint"] == "grpc:4317"
    assert config["tls"] == {"insecure": True}
    assert config["headers"] == {"authorization": "Bearer ${env:OBSERVATORY_API_KEY}"}
    assert config["compression"] == "gzip" and config["retry_on_failure"]["enabled"] is True


def test_it_authenticates_with_the_api_key_from_the_environment(collector):
    headers = collector["exporters"][exporter_of(collector)]["headers"]
    assert headers["Authorization"] == "Bearer ${env:OBSERVATORY_API_KEY}"
    assert "obs_" not in (ROOT / "deploy" / "otel-collector.yaml").read_text()
    assert "obs_" not in (ROOT / "docker-compose.yml").read_text()


def test_it_has_a_dockerfile_for_every_build_context(compose):
    contexts = []
    for service in compose["services"].values():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        contexts.append(ROOT / context / dockerfile)
    assert contexts
    assert all(path.is_file() for path in contexts)


def test_it_builds_a_non_root_image_serving_the_wsgi_app():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert "collectstatic" in dockerfile
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 4317$", dockerfile, re.MULTILINE)
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)[-1]
    assert "gunicorn" in cmd
    assert "observatory.wsgi:application" in cmd


def test_the_image_holds_every_package_the_project_installs():
    """INSTALLED_APPS names observatory, ingest, billing and gateway: an image without one of them cannot start."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+) \./\S*$", dockerfile, re.MULTILINE))
    copied |= {name for line in re.findall(r"^COPY (.+) \./$", dockerfile, re.MULTILINE) for name in line.split()}
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r'include = \[([^\]]*)\]', pyproject).group(1)
    for package in re.findall(r'"(\w+)\*"', packages):
        assert package in copied, f"the Dockerfile does not copy {package}/"
    assert {"setup.py", "pyproject.toml", "templates", "sdk"} <= copied
    assert re.search(r"apt-get install[^\n]*gcc", dockerfile)  # the optional C modules are built in the image
    # installed in place: the processes run /app's code (manage.py, gunicorn and Celery put it first on the path),
    # so a copy in site-packages would be a second, unused one without the C decoder built beside /app's sources
    assert "pip install -e . -e ./sdk" in dockerfile
    assert "from ingest.otlp_decode import _spans" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"**/*.so", "**/build", "**/*.egg-info"} <= set(ignored)  # never the host's builds
