"""``python -m fastsio``: the command line (see :mod:`fastsio.cli`)."""
from fastsio.cli import console_main

console_main()
