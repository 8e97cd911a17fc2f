"""Shared fixtures: run every codec test against both implementations."""
import importlib
import os

import pytest


@pytest.fixture(params=["pure", "speedups"])
def impl(request):
    """Returns a function: codec name -> module of the chosen implementation."""
    if request.param == "speedups" and os.environ.get("FASTSIO_NO_EXTENSIONS", "") not in ("", "0"):
        pytest.skip("pure-Python run")
    def get(name):
        return importlib.import_module(f"fastsio._{request.param}.{name}")
    return get


# A real redis-server per test that asks for it (tests/support/redis_server.py).
from support.redis_server import redis_server  # noqa: E402,F401
