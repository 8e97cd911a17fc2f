"""Cluster adapters: fastsio servers (and Node socket.io servers) joined by a message bus.

``fastsio.adapters.redis`` holds the Redis adapters (Node's
``@socket.io/redis-adapter``, classic and sharded) and the ``Emitter``
(``@socket.io/redis-emitter``); ``_wire`` the encodings they share.
"""
