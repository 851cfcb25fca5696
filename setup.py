"""The optional C decoder of OTLP/protobuf trace exports (`ingest.otlp_decode._spans`): built when a C compiler is
at hand, skipped otherwise (ingest then decodes every body in Python, with the same result)."""

import sys

from setuptools import Extension, setup

extensions = []
if sys.byteorder == "little":  # it reads fixed64 fields as the machine's own integers
    extensions.append(Extension("ingest.otlp_decode._spans", ["ingest/otlp_decode/_spans.c"], optional=True))
setup(ext_modules=extensions)
