"""``python -m fastsio.demo``: see :mod:`fastsio.demo`."""
from fastsio.demo import main

main()
