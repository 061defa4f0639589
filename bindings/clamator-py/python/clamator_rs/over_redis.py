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


def _url(kwargs: dict[str, Any], host: str, port: int) -> str:
    scheme = "rediss" if kwargs.get("ssl") else "redis"
    user, password = kwargs.get("username"), kwargs.get("password")
    auth = f"{quote(user or '', safe='')}:{quote(str(password), safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/{kwargs.get('db') or 0}"


def _read(path: Any) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


def _tls(kwargs: dict[str, Any], cluster: bool) -> dict[str, bytes | None] | None:
    """The TLS material of a redis-py TLS connection (its CA and client certificate), for the
    engine; `None` when it names none (the system's roots then verify the server)."""
    if str(kwargs.get("ssl_cert_reqs", "required")).lower() in ("none", "0", "certnone",
                                                               "verifymode.cert_none"):
        raise ValueError(
            "ssl_cert_reqs='none': clamator_rs always verifies the Redis server's certificate; "
            "give the CA that signed it (ssl_ca_certs=...) instead"
        )
    ca = _read(kwargs.get("ssl_ca_certs"))
    if ca is None and kwargs.get("ssl_ca_data"):
        data = kwargs["ssl_ca_data"]
        ca = data.encode() if isinstance(data, str) else bytes(data)
    tls = {"ca": ca, "cert": _read(kwargs.get("ssl_certfile")),
           "key": _read(kwargs.get("ssl_keyfile"))}
    if not any(tls.values()):
        return None
    if cluster:
        raise ValueError(
            "a private CA or client certificate for a Redis Cluster is not supported by "
            "clamator_rs yet: put the CA into the system's store (or SSL_CERT_FILE)"
        )
    return tls


def _target(redis: Any, redis_url: str | None) -> tuple[str, str, dict[str, Any] | None]:
    """`(transport, url, tls)` to connect to, as 0.1.9 resolves it: `redis_url`, `$REDIS_URL`
    or localhost; or the connection target of a `redis.asyncio.Redis` (host, port, db,
    credentials, TLS with its CA and client certificate) or of a `RedisCluster` (its nodes,
    comma-separated), taken over: the engine opens its own connections there. `rediss://`
    URLs are verified against the system's roots (`SSL_CERT_FILE` is honoured)."""
    if redis is not None and redis_url is not None:
        raise ClamatorTransportError("provide either `redis` or `redis_url`, not both")
    if redis is None:
        url = redis_url or os.environ.get("REDIS_URL") or "redis://localhost:6379"
        return "redis", url, None
    manager = getattr(redis, "nodes_manager", None)
    if manager is not None:  # redis.asyncio.cluster.RedisCluster
        kwargs = dict(getattr(manager, "connection_kwargs", {}) or {})
        nodes = list(redis.get_nodes()) or list(manager.startup_nodes.values())
        tls = _tls(kwargs, cluster=True) if kwargs.get("ssl") else None
        return "redis-cluster", ",".join(_url(kwargs, n.host, n.port) for n in nodes), tls
    kwargs = dict(redis.connection_pool.connection_kwargs)
    if kwargs.get("path"):
        raise ClamatorTransportError(
            "a unix-socket Redis connection cannot be taken over: pass redis_url=..."
        )
    tls = None
    if "SSL" in redis.connection_pool.connection_class.__name__:
        kwargs["ssl"] = True
        tls = _tls(kwargs, cluster=False)
    return "redis", _url(kwargs, kwargs.get("host", "localhost"), kwargs.get("port", 6379)), tls


class RedisRpcServer(EngineServerCore):
    """`clamator_over_redis.RedisRpcServer` on the Rust engine.

    0.1.9 keywords: ``redis``, ``redis_url``, ``key_prefix``, ``instance_id``,
    ``consumer_claim_idle_ms``, ``reply_stream_maxlen``, ``shutdown_grace_ms``.
    Added: ``concurrency`` (handlers at once, default 64), ``ordered`` (``True``: one at a time
    per server, 0.1.9's order), ``max_deliveries`` (deliveries before a request is
    dead-lettered).

    The heartbeat is not a keyword: it is always on, and follows ``consumer_claim_idle_ms``
    (the entries running handlers hold are refreshed every third of it), so a handler may run
    longer than the claim idle without another server running it again (0.1.9 ran it again).
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
        transport, url, tls = _target(redis, redis_url)
        super().__init__(
            transport,
            ordered=ordered,
            url=url,
            tls=tls,
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
        transport, url, tls = _target(redis, redis_url)
        super().__init__(
            transport,
            url=url,
            tls=tls,
            key_prefix=key_prefix,
            instance_id=instance_id,
            default_timeout_ms=default_timeout_ms,
        )
