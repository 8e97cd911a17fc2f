"""Test apps written against python-socketio's API with only the import changed.

Each module uses the API the same way as one of python-socketio's
``examples/server/asgi`` apps (``app.py``, ``fastapi-fiddle.py``,
``latency.py``); they are our own code. tests/interop/test_compat_apps.py
drives them with python-socketio's AsyncClient and the npm socket.io-client,
under uvicorn and under fastsio's own server.
"""
