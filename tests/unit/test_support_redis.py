def test_redis_fixture(redis_server):
    import redis
    r = redis.Redis.from_url(redis_server.url)
    assert r.ping()
    r.set("a", "1")
    redis_server.restart()
    r = redis.Redis.from_url(redis_server.url)
    assert r.get("a") is None
