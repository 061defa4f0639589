"""The 0.1.9 server and client cores on the Rust engine.

The streams, reclaim, heartbeat, dead letters, replies and the client's pending calls run in
Rust on tokio; handlers and callers stay coroutines on the caller's asyncio loop. The two meet
in a batched bridge: tokio queues events and wakes the loop through a socket watched with
``loop.add_reader``; the loop drains a batch and answers with small synchronous calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from typing import Any

from clamator_protocol import (
    METHOD_RE,
    SERVICE_RE,
    ClamatorProtocolError,
    ClamatorTransportError,
    Contract,
    RpcError,
    exception_to_error_data,
)
from pydantic import ValidationError

from ._native import Bridge, EngineClient, EngineServer

# The 0.1.9 server logs under `clamator_protocol.server_core`; so does this one, with the
# same messages, so that log filters and alerts keep working.
logger = logging.getLogger("clamator_protocol.server_core")

_OK, _RPC, _TRANSPORT, _PROTOCOL, _VALUE = range(5)

# What a running handler can ask about its request (`clamator_rs.deadline()`,
# `clamator_rs.request_id()`); set in the handler's own task, so each handler sees its own.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "clamator_rs_deadline", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "clamator_rs_request_id", default=None)


def deadline() -> float | None:
    """When the caller of the request this handler serves stops waiting, on the running
    loop's clock (``loop.time()``), or ``None`` (no handler running, a notification, or a caller
    that did not say: the 0.1.9 clients). Use it as ``async with asyncio.timeout_at(deadline()):``
    to stop work nobody waits for, or to pass what is left to the calls the handler makes."""
    return _deadline.get()


def request_id() -> str | None:
    """The JSON-RPC id of the request this handler serves, as text: the ``id=`` of
    clamator-rs's log lines, for your own. ``None`` outside a handler, for notifications, and
    over memory (an in-process call has no envelope, hence no id)."""
    return _request_id.get()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


class _Ops:
    """One bridge, the loop it is attached to, and the operations waiting on it."""

    def __init__(self) -> None:
        self.bridge = Bridge()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self.on_request: Any = None
        self.on_cancel: Any = None

    def begin(self) -> tuple[int, asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._detach()
            loop.add_reader(self.bridge.fileno(), self._drain)
            self.bridge.listen(True)
            self._loop = loop
        token = self._next
        self._next += 1
        fut = loop.create_future()
        self._pending[token] = fut
        return token, fut

    async def run(self, op: Any, *args: Any) -> Any:
        """Starts the engine's operation `op(token, *args)` and waits for its outcome."""
        token, fut = self.begin()
        op(token, *args)
        return await fut

    async def start(self, op: Any) -> None:
        """`run(op)` for a start: if it fails, the loop stops watching the bridge."""
        try:
            await self.run(op)
        except BaseException:
            self.close()
            raise

    def _detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.bridge.fileno())
        self.bridge.listen(False)
        self._loop = None

    def close(self) -> None:
        if not self._pending:
            self._detach()

    def _drain(self) -> None:
        on_request = self.on_request
        pending = self._pending
        for event in self.bridge.drain():
            if event[0] == "q":
                on_request(event[1], event[2], event[3], event[4], event[5], event[6], event[7])
                continue
            if event[0] == "l":
                logging.getLogger(f"clamator_rs.{event[2]}").log(event[1], event[3])
                continue
            if event[0] == "c":
                self.on_cancel(event[1])
                continue
            fut = pending.pop(event[1], None)
            if fut is None or fut.done():
                continue
            kind = event[2]
            if kind == _OK:
                fut.set_result(event[3])
            elif kind == _RPC:
                data = json.loads(event[5]) if event[5] else None
                fut.set_exception(RpcError(event[3], event[4], data))
            elif kind == _TRANSPORT:
                fut.set_exception(ClamatorTransportError(event[3]))
            elif kind == _PROTOCOL:
                fut.set_exception(ClamatorProtocolError(event[3]))
            else:
                fut.set_exception(ValueError(event[3]))


class EngineServerCore:
    """`RpcServerCore` of 0.1.9 (register_service, start, stop) on a Rust server."""

    def __init__(self, transport: str, *, ordered: bool = False, **engine: Any) -> None:
        if ordered:
            engine["concurrency"] = 1
        self._ops = _Ops()
        self._ops.on_request = self._on_request
        self._ops.on_cancel = self._on_cancel
        self._engine = EngineServer(self._ops.bridge, transport, **engine)
        self._services: dict[str, tuple[Contract, Any]] = {}
        self._state = "idle"
        self._inflight: dict[int, asyncio.Task[Any]] = {}

    def register_service(self, contract: Contract, instance: Any) -> None:
        if contract.service in self._services:
            raise ValueError(f'service "{contract.service}" already registered on this server')
        if self._state != "idle":
            raise RuntimeError(
                f'service "{contract.service}" registered after start(): clamator_rs serves '
                "only the services registered before start() (0.1.9 accepted it and never "
                "served it)"
            )
        methods = [(name, entry.result_model is None) for name, entry in contract.methods.items()]
        self._engine.register_service(contract.service, methods)
        self._services[contract.service] = (contract, instance)

    async def start(self) -> None:
        if self._state == "started":
            return
        if self._state == "stopped":
            raise RuntimeError("server has been stopped")
        await self._ops.start(self._engine.start)
        self._state = "started"

    async def stop(self, *, grace_ms: int | None = None) -> None:
        if self._state != "started":
            self._state = "stopped"
            return
        self._state = "stopping"
        await self._ops.run(self._engine.stop, grace_ms)
        self._state = "stopped"
        self._ops.close()

    def _on_request(
        self, token: int, service: str, method: str, params: bytes, is_request: bool,
        rpc_id: str | None, remaining: float | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        at = None if remaining is None else loop.time() + remaining
        task = loop.create_task(self._run(token, service, method, params, is_request, rpc_id, at))
        self._inflight[token] = task
        task.add_done_callback(lambda _: self._inflight.pop(token, None))

    def _on_cancel(self, token: int) -> None:
        """The engine abandoned request `token` (still running after the stop grace): cancel
        its handler, as 0.1.9's stop does."""
        task = self._inflight.get(token)
        if task is not None:
            task.cancel()

    def _error(self, token: int, code: int, message: str, data: Any = None) -> None:
        self._engine.complete(token, _RPC, code, message, _dumps(data))

    async def _run(  # noqa: PLR0911  # one branch per 0.1.9 error reply
        self, token: int, service: str, method: str, raw: bytes, is_request: bool,
        rpc_id: str | None, at: float | None,
    ) -> None:
        _deadline.set(at)  # this task's own context: seen by this handler only
        _request_id.set(rpc_id)
        contract, instance = self._services[service]
        entry = contract.methods[method]
        try:
            params = entry.params_model.model_validate_json(raw)
        except ValidationError as e:
            logger.warning(
                "RPC params validation failed: %s.%s id=%s", service, method, rpc_id,
                extra={"clamator": {
                    "service": service, "method": method, "rpc_id": rpc_id, "errors": e.errors(),
                }},
            )
            if is_request:
                self._error(token, -32602, "Invalid params", {"errors": e.errors()})
            else:
                self._engine.complete(token, _OK)
            return
        handler = getattr(instance, entry.handler_attr, None)
        if handler is None:
            if is_request:
                self._error(token, -32601, "Method not found")
            else:
                self._engine.complete(token, _OK)
            return
        try:
            result = await handler(params)
        except RpcError as e:
            if is_request:
                self._error(token, e.code, e.message, e.data)
            else:
                self._engine.complete(token, _OK)
            return
        except Exception as e:  # noqa: BLE001  # every handler failure is an error reply
            logger.exception(
                "RPC handler raised: %s.%s id=%s", service, method, rpc_id,
                extra={"clamator": {"service": service, "method": method, "rpc_id": rpc_id}},
            )
            if is_request:
                self._error(token, -32603, "Internal error", exception_to_error_data(e))
            else:
                self._engine.complete(token, _OK)
            return
        if not is_request or entry.result_model is None:
            self._engine.complete(token, _OK)
            return
        try:
            validated = entry.result_model.model_validate(result)
        except ValidationError as e:
            logger.error(
                "RPC result validation failed: %s.%s id=%s errors=%s",
                service, method, rpc_id, e.errors(),
                extra={"clamator": {
                    "service": service, "method": method, "rpc_id": rpc_id, "errors": e.errors(),
                }},
            )
            self._error(token, -32603, "Result validation failed", {"errors": e.errors()})
            return
        self._engine.complete(token, _OK, validated.model_dump_json(by_alias=True).encode())


class EngineClientCore:
    """`RpcClientCore` of 0.1.9 (call, notify, start, stop) on a Rust client."""

    def __init__(self, transport: str, *, default_timeout_ms: int = 30_000, **engine: Any) -> None:
        self._ops = _Ops()
        self._engine = EngineClient(
            self._ops.bridge, transport, default_timeout_ms=default_timeout_ms, **engine
        )
        self._state = "idle"

    def _check(self, service: str, method: str) -> None:
        """What 0.1.9 checks before sending, with its errors."""
        if not SERVICE_RE.match(service):
            raise ValueError(f"invalid service \"{service}\"")
        if not METHOD_RE.match(method):
            raise ValueError(f"invalid method \"{method}\"")
        if self._state != "started":
            raise ClamatorTransportError(f"transport not started (state={self._state})")

    async def call(
        self, service: str, method: str, params: Any, *, timeout_ms: int | None = None,
    ) -> Any:
        self._check(service, method)
        raw = await self._ops.run(self._engine.call, service, method, _dumps(params), timeout_ms)
        return json.loads(raw)

    async def notify(self, service: str, method: str, params: Any) -> None:
        self._check(service, method)
        await self._ops.run(self._engine.notify, service, method, _dumps(params))

    async def start(self) -> None:
        if self._state == "stopped":
            raise RuntimeError("client has been stopped")
        if self._state == "started":
            return
        await self._ops.start(self._engine.start)
        self._state = "started"

    async def stop(self) -> None:
        if self._state != "started":
            self._state = "stopped"
            return
        self._state = "stopped"
        await self._ops.run(self._engine.stop)
        self._ops.close()
