"""clamator-rs: clamator's Rust engine behind the clamator 0.1.9 Python API.

Change one import line: ``from clamator_over_redis import RedisRpcServer`` becomes
``from clamator_rs.over_redis import RedisRpcServer`` (likewise ``over_memory``; ``over_nats``
is new). Contracts, generated ``*Client`` proxies and ``*Service`` classes, ``RpcError`` and the
other exceptions are those of the released ``clamator-protocol`` 0.1.9.

Added: inside a handler, ``deadline()`` (when its caller stops waiting, on the loop's clock) and
``request_id()``.
"""

from clamator_protocol import ClamatorProtocolError, ClamatorTransportError, RpcError

from ._core import deadline, request_id

__all__ = ["RpcError", "ClamatorProtocolError", "ClamatorTransportError", "deadline", "request_id"]
