"""Redis Streams, wire-compatible with ``clamator-over-redis`` 0.1.9 (mixed pools work)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from clamator_protocol import ClamatorProtocolError, ClamatorTransportError, RpcError

from ._core import EngineClientCore, EngineServerCore

__all__ = [
    "RedisRpcServer", "RedisRpcClient",
    "RpcError", "ClamatorProtocolError", "ClamatorTransportError",
]


def _target(redis: Any, redis_url: str | None) -> str:
    """The URL to connect to: `redis_url`, the connection target of a `redis.asyncio.Redis`
    (or `RedisCluster`: its first node; the engine discovers the rest), `$REDIS_URL`, or
    localhost — as 0.1.9 resolves it."""
    if redis is not None and redis_url is not None:
        raise ClamatorTransportError("provide either `redis` or `redis_url`, not both")
    if redis is None:
        return redis_url or os.environ.get("REDIS_URL") or "redis://localhost:6379"
    nodes = getattr(redis, "startup_nodes", None)
    if nodes:
        node = nodes[0]
        kwargs = dict(getattr(redis, "connection_kwargs", {}) or {})
        kwargs.setdefault("host", node.host)
        kwargs["port"] = node.port
    else:
        pool = getattr(redis, "connection_pool", None)
        kwargs = dict(getattr(pool, "connection_kwargs", {}) or {})
    if kwargs.get("path"):
        raise ClamatorTransportError(
            "a unix-socket Redis connection cannot be taken over: pass redis_url=\"redis+unix://…\""
        )
    scheme = "rediss" if kwargs.get("ssl") or "SSL" in type(getattr(
        getattr(redis, "connection_pool", None), "connection_class", object)).__name__ else "redis"
    user, password = kwargs.get("username"), kwargs.get("password")
    auth = ""
    if password is not None:
        auth = f"{quote(user or '', safe='')}:{quote(str(password), safe='')}@"
    host = kwargs.get("host", "localhost")
    port = kwargs.get("port", 6379)
    db = kwargs.get("db", 0) or 0
    return f"{scheme}://{auth}{host}:{port}/{db}"


class RedisRpcServer(EngineServerCore):
    """`clamator_over_redis.RedisRpcServer` on the Rust engine.

    0.1.9 keywords: ``redis``, ``redis_url``, ``key_prefix``, ``instance_id``,
    ``consumer_claim_idle_ms``, ``reply_stream_maxlen``, ``shutdown_grace_ms``.
    Added: ``concurrency`` (handlers at once, default 64), ``ordered`` (``True``: one at a time
    per server, 0.1.9's order), ``max_deliveries`` (deliveries before a request is
    dead-lettered).
    """

    def __init__(
        self, *, redis: Any = None, redis_url: str | None = None,
        key_prefix: str,
        instance_id: str | None = None,
        consumer_claim_idle_ms: int = 60_000,
        reply_stream_maxlen: int = 1024,
        shutdown_grace_ms: int = 5_000,
        concurrency: int = 64,
        ordered: bool = False,
        max_deliveries: int | None = None,
    ) -> None:
        super().__init__(
            "redis",
            ordered=ordered,
            url=_target(redis, redis_url),
            key_prefix=key_prefix,
            instance_id=instance_id,
            consumer_claim_idle_ms=consumer_claim_idle_ms,
            reply_stream_maxlen=reply_stream_maxlen,
            shutdown_grace_ms=shutdown_grace_ms,
            concurrency=concurrency,
            max_deliveries=max_deliveries,
        )


class RedisRpcClient(EngineClientCore):
    """`clamator_over_redis.RedisRpcClient` on the Rust engine (0.1.9 keywords: ``redis``,
    ``redis_url``, ``key_prefix``, ``instance_id``, ``default_timeout_ms``)."""

    def __init__(
        self, *, redis: Any = None, redis_url: str | None = None,
        key_prefix: str,
        instance_id: str | None = None,
        default_timeout_ms: int = 30_000,
    ) -> None:
        super().__init__(
            "redis",
            url=_target(redis, redis_url),
            key_prefix=key_prefix,
            instance_id=instance_id,
            default_timeout_ms=default_timeout_ms,
        )
