"""Dashboard pages, one module per area; each view reads its numbers from `observatory.dashboard` and writes
through a service."""
