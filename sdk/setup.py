"""The optional C writer of the canonical request text (`observatory_sdk._speedups`): built when a
C compiler is at hand, skipped otherwise (the SDK then writes the same text in Python)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("observatory_sdk._speedups", ["observatory_sdk/_speedups.c"], optional=True)])
