"""The test cache, emptied per worker."""

from __future__ import annotations


def cache_clear_own() -> None:
    """Empty this process's cache. A Redis cache is shared by the parallel workers (each with its
    own key prefix): delete only this worker's keys, since ``clear()`` would empty theirs mid-test."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.clear()
        return
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=backend.make_key("*")))
    if keys:
        client.delete(*keys)
