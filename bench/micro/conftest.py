"""Micro-benchmark fixtures: each benchmark runs on both codec implementations.

Run with ``bash bench/run.sh --micro`` (or ``pytest bench/micro`` from the
repository root). The main test run does not collect this folder (its
testpaths is ``tests``).
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Callable

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(params=["pure", "speedups"])
def codec(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    """Returns name -> module of ``fastsio._pure`` or ``fastsio._speedups``."""
    package = f"fastsio._{request.param}"

    def load(name: str) -> ModuleType:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ImportError as exc:
            pytest.skip(f"{package}.{name} not importable: {exc}")

    return load
