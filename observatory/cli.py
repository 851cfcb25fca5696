"""Command-line entry points: `observatory up` and `observatory <manage.py command>`.

When DATABASE_URL is unset, management commands start (or attach to) the embedded PostgreSQL
first, so `python manage.py createsuperuser` works on a fresh machine with no setup.
"""

from __future__ import annotations

import os
import sys

from observatory.config import ConfigError, load_config

NO_DATABASE_COMMANDS = {"help", "--help", "-h", "version", "--version", "makemigrations", "check", "collectstatic"}


def run_manage(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    command = argv[1] if len(argv) > 1 else "help"
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"observatory: configuration error: {exc}", file=sys.stderr)
        return 2
    if command == "up":
        from observatory.launcher import up

        return up(argv[2:])
    if config.embedded_database and command not in NO_DATABASE_COMMANDS:
        from observatory.embedded_db import database_url, ensure_postgres

        server = ensure_postgres(config.data_dir / "pgdata", database=config.database["NAME"])
        os.environ["DATABASE_URL"] = database_url(server, config.database["NAME"])
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)
    return 0


def main() -> None:
    argv = ["observatory", *sys.argv[1:]]
    sys.exit(run_manage(argv))


if __name__ == "__main__":
    main()
