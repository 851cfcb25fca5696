"""The package version, reported as the instrumentation scope version of every span."""

__version__ = "0.3.1"
