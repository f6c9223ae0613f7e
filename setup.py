"""Builds the optional C speed-up; everything else is declared in pyproject.toml.

The extension is ``optional``: without a compiler (or with WSEVENTS_NO_SPEEDUPS=1
at install time) the install succeeds and wsevents runs on its pure-Python path.
"""

import os

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("WSEVENTS_NO_SPEEDUPS"):
    ext_modules.append(Extension("wsevents._speedups", ["src/wsevents/_speedups.c"], optional=True))

setup(ext_modules=ext_modules)
