"""Cluster adapters: fastsio servers (and Node socket.io servers) joined by a message bus.

- ``fastsio.adapters.cluster``: the ClusterAdapter protocol of Node's
  ``socket.io-adapter`` (message types, request/response bookkeeping,
  heartbeats), with no I/O; the bus transports subclass it.
- ``fastsio.adapters.redis``: the Redis adapters (Node's
  ``@socket.io/redis-adapter``, classic and sharded) and the ``Emitter``
  (``@socket.io/redis-emitter``); the sharded one lives in
  ``fastsio.adapters.redis_sharded``.
- ``fastsio.adapters.redis_streams``: the Redis Streams adapter.
- ``_wire``: the encodings they share (notepack-compatible msgpack, Node's JSON).

Nothing is imported here, so ``import fastsio`` never needs redis-py.
"""
