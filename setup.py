# Metadata lives in setup.cfg; this shim keeps `setup.py`-driven tools (dh-python,
# rpmbuild macros on older distros) working.
from setuptools import setup

setup()
