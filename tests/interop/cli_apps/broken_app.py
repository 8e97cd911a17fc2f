"""A module that fails to import (tests/interop/test_cli.py)."""
import fastsio

io = fastsio.Server()
1 / 0
