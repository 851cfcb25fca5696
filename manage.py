#!/usr/bin/env python
"""Django's command-line utility, which also starts the embedded PostgreSQL when DATABASE_URL is unset."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "observatory.settings")
    from observatory.cli import run_manage

    sys.exit(run_manage(sys.argv))


if __name__ == "__main__":
    main()
