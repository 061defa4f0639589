"""In-process bus: servers and clients of one process, without a broker."""

from __future__ import annotations

from clamator_protocol import ClamatorProtocolError, ClamatorTransportError, RpcError

from ._core import EngineClientCore, EngineServerCore
from ._native import Bus

__all__ = [
    "MemoryBus", "MemoryRpcServer", "MemoryRpcClient",
    "RpcError", "ClamatorProtocolError", "ClamatorTransportError",
]


class MemoryBus:
    """What servers and clients of one process share (`clamator_over_memory.MemoryBus`)."""

    def __init__(self) -> None:
        self._bus = Bus()


class MemoryRpcServer(EngineServerCore):
    """`clamator_over_memory.MemoryRpcServer` on the Rust engine (``instance_id`` is accepted
    and unused, as in 0.1.9)."""

    def __init__(
        self, *, bus: MemoryBus, instance_id: str = "mem-server",
        concurrency: int = 64, ordered: bool = False,
    ) -> None:
        del instance_id
        super().__init__("memory", ordered=ordered, bus=bus._bus, concurrency=concurrency)


class MemoryRpcClient(EngineClientCore):
    """`clamator_over_memory.MemoryRpcClient` on the Rust engine."""

    def __init__(
        self, *, bus: MemoryBus, instance_id: str = "mem-client",
        default_timeout_ms: int = 30_000,
    ) -> None:
        del instance_id
        super().__init__("memory", bus=bus._bus, default_timeout_ms=default_timeout_ms)
