import subprocess
import sys
from pathlib import Path

import pytest

from observatory.config import DEFAULT_SECRET_KEY, ConfigError, load_config, parse_database_url

REPO = Path(__file__).resolve().parents[2]


def test_it_parses_a_database_url():
    db = parse_database_url("postgresql://obs:s%40cret@db.internal:6432/observatory?sslmode=require")
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (
        "observatory", "obs", "s@cret", "db.internal", "6432"
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_it_reads_a_socket_host_from_the_query():
    db = parse_database_url("postgresql://postgres@/observatory?host=/tmp/pg")
    assert db["HOST"] == "/tmp/pg"
    assert db["OPTIONS"] == {}


def test_it_rejects_a_non_postgres_database():
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        parse_database_url("mysql://root@localhost/observatory")


def test_it_rejects_a_database_url_without_a_name():
    with pytest.raises(ConfigError, match="no database name"):
        parse_database_url("postgresql://localhost:5432")


def test_it_rejects_a_bad_port():
    with pytest.raises(ConfigError, match="malformed"):
        parse_database_url("postgresql://localhost:notaport/observatory")


def test_it_rejects_a_bad_boolean():
    with pytest.raises(ConfigError, match="DEBUG='maybe' is not a boolean"):
        load_config({"DEBUG": "maybe", "HOME": "/tmp"})


def test_it_rejects_a_bad_number():
    with pytest.raises(ConfigError, match="EMAIL_PORT='twenty-five' is not a whole number"):
        load_config({"EMAIL_PORT": "twenty-five", "HOME": "/tmp"})


def test_production_refuses_the_default_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY must be set in production"):
        load_config({"DJANGO_ENV": "production", "ALLOWED_HOSTS": "obs.example.com", "HOME": "/tmp"})


def test_production_requires_allowed_hosts():
    with pytest.raises(ConfigError, match="ALLOWED_HOSTS must be set"):
        load_config({"DJANGO_ENV": "production", "SECRET_KEY": "x" * 50, "HOME": "/tmp"})


def test_local_defaults_are_embedded_and_safe():
    config = load_config({"HOME": "/home/dev"})
    assert config.embedded_database and config.embedded_broker
    assert config.data_dir == Path("/home/dev/.local/share/observatory")
    assert config.database["HOST"] == "/home/dev/.local/share/observatory/pgdata"
    assert config.secret_key == DEFAULT_SECRET_KEY and not config.production
    assert config.broker_url == "filesystem://"


def test_it_uses_external_services_when_configured():
    config = load_config({
        "HOME": "/tmp", "DATABASE_URL": "postgresql://127.0.0.1:5432/obs", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    })
    assert not config.embedded_database and not config.embedded_broker
    assert config.broker_url == "redis://127.0.0.1:6379/0"


def test_it_rejects_an_unknown_broker():
    with pytest.raises(ConfigError, match="not a supported broker URL"):
        load_config({"HOME": "/tmp", "CELERY_BROKER_URL": "kafka://localhost:9092"})


def test_private_webhook_addresses_are_refused_unless_allowed():
    assert load_config({"HOME": "/tmp"}).webhook_allow_private is False
    assert load_config({"HOME": "/tmp", "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE": "true"}).webhook_allow_private is True
    assert load_config({"HOME": "/tmp", "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE": "0"}).webhook_allow_private is False
    with pytest.raises(ConfigError, match="OBSERVATORY_WEBHOOK_ALLOW_PRIVATE='sometimes' is not a boolean"):
        load_config({"HOME": "/tmp", "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE": "sometimes"})


def test_the_gateways_private_networks_are_read_as_networks():
    assert load_config({"HOME": "/tmp"}).gateway_private_networks == []
    config = load_config({"HOME": "/tmp", "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS": "10.0.0.0/8, 192.168.1.5,fd00::/8"})
    assert config.gateway_private_networks == ["10.0.0.0/8", "192.168.1.5/32", "fd00::/8"]
    with pytest.raises(ConfigError, match="OBSERVATORY_GATEWAY_PRIVATE_NETWORKS: 'intranet' is not a network"):
        load_config({"HOME": "/tmp", "OBSERVATORY_GATEWAY_PRIVATE_NETWORKS": "intranet"})


def test_the_gateway_url_is_the_sites_host_on_the_gateway_port_unless_named():
    assert load_config({"HOME": "/tmp"}).gateway_url == "http://127.0.0.1:4000"
    behind_tls = {"HOME": "/tmp", "SITE_URL": "https://obs.example.com", "OBSERVATORY_GATEWAY_PORT": "4100"}
    assert load_config(behind_tls).gateway_url == "http://obs.example.com:4100"
    named = {**behind_tls, "OBSERVATORY_GATEWAY_URL": "https://llm.example.com/"}
    assert load_config(named).gateway_url == "https://llm.example.com"
    with pytest.raises(ConfigError, match=r"OBSERVATORY_GATEWAY_URL='llm\.example\.com' must start with http"):
        load_config({"HOME": "/tmp", "OBSERVATORY_GATEWAY_URL": "llm.example.com"})
    with pytest.raises(ConfigError, match="OBSERVATORY_GATEWAY_PORT='gw' is not a whole number"):
        load_config({"HOME": "/tmp", "OBSERVATORY_GATEWAY_PORT": "gw"})


def test_manage_py_prints_a_clear_configuration_error():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "DATABASE_URL": "mysql://root@localhost/x"},
    )
    assert result.returncode == 2
    assert "configuration error: DATABASE_URL scheme 'mysql' is not supported" in result.stderr
    assert "Traceback" not in result.stderr
