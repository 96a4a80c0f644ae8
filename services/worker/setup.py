"""The worker's one C extension, optional: without a compiler the worker starts job shells through
setpriv(1) instead (about half as fast; see queuectl_worker/launch.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("queuectl_worker._spawn", ["queuectl_worker/_spawn.c"], optional=True)])
