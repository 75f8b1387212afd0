"""setuptools entry point: only here because `cffi_modules` is a setup() keyword.

Everything else about the package lives in pyproject.toml.
"""
from setuptools import setup

setup(cffi_modules=["build.py:ffibuilder"])
