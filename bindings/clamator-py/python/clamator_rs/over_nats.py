"""NATS JetStream: clamator's own wire (no 0.1.9 peer speaks it; Rust servers and clients do)."""

from __future__ import annotations

import os

from clamator_protocol import ClamatorProtocolError, ClamatorTransportError, RpcError

from ._core import EngineClientCore, EngineServerCore

__all__ = [
    "NatsRpcServer", "NatsRpcClient",
    "RpcError", "ClamatorProtocolError", "ClamatorTransportError",
]


def _url(nats_url: str | None) -> str:
    return nats_url or os.environ.get("NATS_URL") or "nats://localhost:4222"


class NatsRpcServer(EngineServerCore):
    """A server on NATS JetStream (``nats_url``: one URL or several, comma-separated).

    ``ack_wait_ms``: how long a delivered request may go unacknowledged before JetStream
    delivers it to another server (default 30 000, at least 300; the first server to create a
    service's consumer sets it): the time to notice a dead server. Running handlers keep their
    requests with in-progress acks every third of it (the heartbeat), so a handler may run
    longer than that."""

    def __init__(
        self, *, nats_url: str | None = None, key_prefix: str = "clamator",
        instance_id: str | None = None, shutdown_grace_ms: int = 5_000,
        concurrency: int = 64, ordered: bool = False, max_deliveries: int | None = None,
        ack_wait_ms: int | None = None,
    ) -> None:
        super().__init__(
            "nats", ordered=ordered, url=_url(nats_url), key_prefix=key_prefix,
            instance_id=instance_id, shutdown_grace_ms=shutdown_grace_ms,
            concurrency=concurrency, max_deliveries=max_deliveries,
            consumer_claim_idle_ms=ack_wait_ms,
        )


class NatsRpcClient(EngineClientCore):
    """A client on NATS JetStream."""

    def __init__(
        self, *, nats_url: str | None = None, key_prefix: str = "clamator",
        instance_id: str | None = None, default_timeout_ms: int = 30_000,
    ) -> None:
        super().__init__(
            "nats", url=_url(nats_url), key_prefix=key_prefix, instance_id=instance_id,
            default_timeout_ms=default_timeout_ms,
        )
