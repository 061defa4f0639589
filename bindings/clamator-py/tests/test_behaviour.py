"""What the released 0.1.9 packages do, checked against both implementations (``impl`` is
``released`` or ``rs``): every assertion that holds for both is the contract; where clamator-rs
differs on purpose, the test says so and the README lists it ("For Python teams")."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import pytest
from arith import (
    AddParams,
    AddResult,
    ArithClient,
    ArithService,
    DivideResult,
    EchoText,
    SlowAddParams,
    arith_contract,
)
from clamator_protocol import ClamatorTransportError, Contract, MethodEntry, RpcError
from notifications import NotificationsClient, NotificationsService, PingParams, notifications_contract


class Fixture(ArithService, NotificationsService):
    def __init__(self) -> None:
        self.pings: list[str | None] = []
        self.ping_seen = asyncio.Event()
        self.slow_runs = 0

    async def add(self, p):
        return AddResult(sum=p.a + p.b)

    async def divide(self, p):
        if p.b == 0:
            raise RpcError(-32000, "division by zero", {"a": p.a})
        return DivideResult(q=p.a / p.b)

    async def echo_text(self, p):
        if p.text == "raise":
            raise KeyError("boom")
        if p.text == "bad result":
            return {"nope": 1}
        return EchoText(text=p.text)

    async def slow_add(self, p):
        self.slow_runs += 1
        await asyncio.sleep(p.sleep_ms / 1000)
        return AddResult(sum=p.a + p.b)

    async def ping(self, p):
        self.pings.append(p.tag)
        self.ping_seen.set()


def make(impl, transport, url, prefix, bus=None, **client_kw):
    if transport == "memory":
        bus = bus or impl.memory.MemoryBus()
        return (impl.memory.MemoryRpcServer(bus=bus),
                impl.memory.MemoryRpcClient(bus=bus, **client_kw))
    return (impl.redis.RedisRpcServer(redis_url=url, key_prefix=prefix),
            impl.redis.RedisRpcClient(redis_url=url, key_prefix=prefix, **client_kw))


async def stop_client(impl, client):
    """Stops a client. The released RedisRpcClient's stop() cancels its reply loop and awaits
    it; redis-py 8.1 can swallow that cancellation inside the blocking XREAD, the loop (a
    `while True`) runs on, and stop() waits for it: 20-60 s here, once more than 4 minutes.
    Bounded for it (1 s, then its reply loop is cancelled again until it ends), so that the
    suite measures behaviour rather than that wait (docs/python.md: differences)."""
    if impl.name != "released":
        await client.stop()
        return
    stopping = asyncio.ensure_future(client.stop())
    await asyncio.wait({stopping}, timeout=1)
    reply_loop = getattr(getattr(client, "_transport", None), "_reply_loop_task", None)
    for _ in range(50):
        if stopping.done():
            return
        if reply_loop is not None:
            reply_loop.cancel()
        await asyncio.wait({stopping}, timeout=0.1)
    stopping.cancel()


@asynccontextmanager
async def running(impl, transport, url, prefix, **client_kw):
    server, client = make(impl, transport, url, prefix, **client_kw)
    fixture = Fixture()
    server.register_service(arith_contract, fixture)
    server.register_service(notifications_contract, fixture)
    await server.start()
    await client.start()
    try:
        yield fixture, client
    finally:
        await stop_client(impl, client)
        await server.stop()


TRANSPORTS = ["redis", "memory"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_typed_call_and_rpc_error(impl, transport, redis_url, prefix):
    async with running(impl, transport, redis_url, prefix) as (_, client):
        arith = ArithClient(client)
        assert (await arith.add(AddParams(a=2, b=3))).sum == 5
        with pytest.raises(RpcError) as e:
            await arith.divide(AddParams(a=1, b=0))
        assert (e.value.code, e.value.message, e.value.data) == (-32000, "division by zero", {"a": 1.0})


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_error_shapes(impl, transport, redis_url, prefix):
    async with running(impl, transport, redis_url, prefix) as (_, client):
        with pytest.raises(RpcError) as e:
            await client.call("arith", "add", {"a": "x"})
        assert (e.value.code, e.value.message) == (-32602, "Invalid params")
        assert [list(err["loc"]) for err in e.value.data["errors"]] == [["a"], ["b"]]
        with pytest.raises(RpcError) as e:
            await client.call("arith", "echoText", {"text": "raise"})
        assert (e.value.code, e.value.message) == (-32603, "Internal error")
        assert e.value.data == {"name": "KeyError", "message": "'boom'"}
        with pytest.raises(RpcError) as e:
            await client.call("arith", "echoText", {"text": "bad result"})
        assert (e.value.code, e.value.message) == (-32603, "Result validation failed")
        assert e.value.data["errors"][0]["type"] == "missing"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_method_not_found(impl, transport, redis_url, prefix):
    async with running(impl, transport, redis_url, prefix, default_timeout_ms=3000) as (_, client):
        with pytest.raises(RpcError) as e:
            await client.call("arith", "nope", {})
        assert (e.value.code, e.value.message, e.value.data) == (-32601, "Method not found", None)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_notifications(impl, transport, redis_url, prefix):
    async with running(impl, transport, redis_url, prefix) as (fixture, client):
        await NotificationsClient(client).ping(PingParams(tag="hello"))
        await asyncio.wait_for(fixture.ping_seen.wait(), 5)
        assert fixture.pings == ["hello"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_timeout(impl, transport, redis_url, prefix):
    async with running(impl, transport, redis_url, prefix) as (_, client):
        with pytest.raises(ClamatorTransportError) as e:
            await ArithClient(client).slow_add(SlowAddParams(a=1, b=1, sleepMs=1000), timeout_ms=100)
        assert str(e.value) == "call timeout"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_lifecycle_errors(impl, transport, redis_url, prefix):
    server, client = make(impl, transport, redis_url, prefix)
    with pytest.raises(ClamatorTransportError) as e:
        await client.call("arith", "add", {"a": 1, "b": 2})
    assert str(e.value) == "transport not started (state=idle)"
    with pytest.raises(ValueError, match='invalid service "Bad"'):
        await client.call("Bad", "add", {})
    with pytest.raises(ValueError, match='invalid method "bad-name"'):
        await client.call("arith", "bad-name", {})
    server.register_service(arith_contract, Fixture())
    with pytest.raises(ValueError, match='service "arith" already registered on this server'):
        server.register_service(arith_contract, Fixture())
    await server.start()
    await server.start()  # idempotent
    await client.start()
    await client.start()
    await stop_client(impl, client)
    await server.stop()
    with pytest.raises(RuntimeError, match="server has been stopped"):
        await server.start()
    with pytest.raises(RuntimeError, match="client has been stopped"):
        await client.start()
    # stop before start is allowed and final
    server2, client2 = make(impl, transport, redis_url, prefix + "x")
    await server2.stop()
    await client2.stop()


async def test_register_after_start(impl, redis_url, prefix):
    server, client = make(impl, "redis", redis_url, prefix, default_timeout_ms=1000)
    server.register_service(arith_contract, Fixture())
    await server.start()
    if impl.name == "released":
        # accepted, and never served
        server.register_service(notifications_contract, Fixture())
    else:
        with pytest.raises(RuntimeError, match="registered after start"):
            server.register_service(notifications_contract, Fixture())
    await server.stop()


async def test_constructor_defaults_and_conflicts(impl, redis_url, prefix):
    with pytest.raises(ClamatorTransportError, match="provide either `redis` or `redis_url`, not both"):
        impl.redis.RedisRpcServer(redis=object(), redis_url=redis_url, key_prefix=prefix)
    with pytest.raises(ClamatorTransportError, match="provide either `redis` or `redis_url`, not both"):
        impl.redis.RedisRpcClient(redis=object(), redis_url=redis_url, key_prefix=prefix)
    with pytest.raises(TypeError):
        impl.redis.RedisRpcServer(redis_url=redis_url)  # key_prefix is required


async def test_a_redis_client_object_is_taken_over(impl, redis_url, prefix):
    from redis.asyncio import Redis

    r = Redis.from_url(redis_url)
    server = impl.redis.RedisRpcServer(redis=r, key_prefix=prefix)
    client = impl.redis.RedisRpcClient(redis=r, key_prefix=prefix)
    server.register_service(arith_contract, Fixture())
    await server.start()
    await client.start()
    assert (await ArithClient(client).add(AddParams(a=1, b=2))).sum == 3
    await stop_client(impl, client)
    await server.stop()
    await r.aclose()


async def test_logging_names(impl, redis_url, prefix, caplog):
    caplog.set_level(logging.WARNING)
    async with running(impl, "redis", redis_url, prefix) as (_, client):
        with pytest.raises(RpcError):
            await client.call("arith", "echoText", {"text": "raise"})
        with pytest.raises(RpcError):
            await client.call("arith", "add", {"a": 1})
    records = [(r.name, r.levelname, r.getMessage().split(" id=")[0]) for r in caplog.records
               if r.name == "clamator_protocol.server_core"]
    assert ("clamator_protocol.server_core", "ERROR", "RPC handler raised: arith.echoText") in records
    assert ("clamator_protocol.server_core", "WARNING", "RPC params validation failed: arith.add") in records
    raised = next(r for r in caplog.records if r.getMessage().startswith("RPC handler raised"))
    assert raised.exc_info is not None and raised.exc_info[0] is KeyError
    assert raised.clamator["service"] == "arith"
    # the request id names the call, as in 0.1.9 (a UUID from the client)
    assert len(str(raised.clamator["rpc_id"])) == 36, raised.getMessage()
    assert raised.getMessage().endswith(f"id={raised.clamator['rpc_id']}")


async def test_many_in_flight(impl, redis_url, prefix):
    """2,000 calls at once: clamator-rs answers all; 0.1.9's client is not asked to (it fails
    above ~60 in flight: the README's measurements)."""
    n = 2000 if impl.name == "rs" else 50
    async with running(impl, "redis", redis_url, prefix) as (_, client):
        arith = ArithClient(client)
        results = await asyncio.gather(*(arith.add(AddParams(a=i, b=1)) for i in range(n)))
        assert [r.sum for r in results] == [i + 1.0 for i in range(n)]


async def test_handler_objects_of_custom_contracts(impl, redis_url, prefix):
    """A contract written by hand (not generated): any pydantic params/result models."""
    from pydantic import BaseModel

    class P(BaseModel):
        items: list[int]

    class R(BaseModel):
        total: int

    class H:
        async def total(self, p):
            return R(total=sum(p.items))

    contract = Contract(service="sums", methods={
        "total": MethodEntry(params_model=P, result_model=R, handler_attr="total"),
    })
    server, client = make(impl, "redis", redis_url, prefix)
    server.register_service(contract, H())
    await server.start()
    await client.start()
    assert await client.call("sums", "total", {"items": [1, 2, 3]}) == {"total": 6}
    await stop_client(impl, client)
    await server.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_call_after_stop(impl, transport, redis_url, prefix):
    server, client = make(impl, transport, redis_url, prefix)
    server.register_service(arith_contract, Fixture())
    await server.start()
    await client.start()
    await stop_client(impl, client)
    with pytest.raises(ClamatorTransportError, match=r"transport not started \(state=stopped\)"):
        await client.call("arith", "add", {"a": 1, "b": 2})
    await server.stop()


async def test_memory_service_nobody_serves(impl):
    bus = impl.memory.MemoryBus()
    client = impl.memory.MemoryRpcClient(bus=bus, default_timeout_ms=2000)
    await client.start()
    with pytest.raises(RpcError) as e:
        await client.call("arith", "add", {"a": 1, "b": 2})
    assert e.value.code == -32601
    await client.stop()


async def test_two_memory_servers_one_service(impl):
    """Two servers of one bus cannot both serve `arith`: the second start() fails."""
    bus = impl.memory.MemoryBus()
    first, second = impl.memory.MemoryRpcServer(bus=bus), impl.memory.MemoryRpcServer(bus=bus)
    first.register_service(arith_contract, Fixture())
    second.register_service(arith_contract, Fixture())
    await first.start()
    expected = ValueError if impl.name == "released" else ClamatorTransportError
    with pytest.raises(expected, match="arith"):
        await second.start()
    await first.stop()


@pytest.mark.parametrize("ordered", [False, True])
async def test_ordered_runs_one_handler_at_a_time(rs, redis_url, prefix, ordered):
    """clamator-rs runs handlers concurrently; `ordered=True` keeps 0.1.9's one at a time."""
    running = peak = 0

    class Counting(Fixture):
        async def slow_add(self, p):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            return AddResult(sum=p.a + p.b)

    server = rs.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix, ordered=ordered)
    server.register_service(arith_contract, Counting())
    client = rs.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    await asyncio.gather(*(arith.slow_add(SlowAddParams(a=i, b=0, sleepMs=0)) for i in range(20)))
    assert peak == 1 if ordered else peak > 1, peak
    await client.stop()
    await server.stop()


@pytest.mark.parametrize("transport", [*TRANSPORTS, "nats"])
async def test_a_handler_knows_its_deadline_and_request_id(rs, released, transport, redis_url,
                                                          prefix, request):
    """Added by clamator-rs: `clamator_rs.deadline()` (when the caller stops waiting, on the
    loop's clock) and `clamator_rs.request_id()`, each handler its own; `None` where there is
    none (outside handlers, notifications, 0.1.9 callers' deadlines: they send no timeout;
    ids over memory: in process there is no envelope)."""
    import clamator_rs

    seen: list[tuple[float | None, str | None]] = []
    stopped_after: list[float] = []

    class Seeing(Fixture):
        async def add(self, p):
            d = clamator_rs.deadline()
            seen.append((None if d is None else d - asyncio.get_running_loop().time(),
                         clamator_rs.request_id()))
            await asyncio.sleep(0.05)  # the other calls run meanwhile: each keeps its own
            assert clamator_rs.deadline() == d
            return AddResult(sum=p.a + p.b)

        async def slow_add(self, p):
            loop = asyncio.get_running_loop()
            began = loop.time()
            try:
                async with asyncio.timeout_at(clamator_rs.deadline()):
                    await asyncio.sleep(p.sleep_ms / 1000)
            finally:
                stopped_after.append(loop.time() - began)
            return AddResult(sum=p.a + p.b)

        async def ping(self, p):
            seen.append((clamator_rs.deadline(), clamator_rs.request_id()))
            self.ping_seen.set()

    assert clamator_rs.deadline() is None and clamator_rs.request_id() is None
    if transport == "nats":
        from clamator_rs.over_nats import NatsRpcClient, NatsRpcServer

        url = request.getfixturevalue("nats_url")
        server = NatsRpcServer(nats_url=url, key_prefix=prefix)
        client = NatsRpcClient(nats_url=url, key_prefix=prefix)
    else:
        server, client = make(rs, transport, redis_url, prefix)
    fixture = Seeing()
    server.register_service(arith_contract, fixture)
    server.register_service(notifications_contract, fixture)
    await server.start()
    await client.start()
    try:
        arith = ArithClient(client)
        await asyncio.gather(
            client.call("arith", "add", {"a": 1, "b": 2}, timeout_ms=1500),
            client.call("arith", "add", {"a": 1, "b": 2}, timeout_ms=4000),
        )
        left = sorted(s[0] for s in seen)
        assert 1.0 < left[0] <= 1.5 and 3.5 < left[1] <= 4.0, seen
        ids = [s[1] for s in seen]
        if transport == "memory":
            assert ids == [None, None]  # in process there is no envelope, hence no id
        else:
            assert all(isinstance(i, str) and i for i in ids) and ids[0] != ids[1], ids
        # A handler that bounds its work by the deadline stops when its caller gives up (which
        # of the two the caller sees first, its timeout or the handler's TimeoutError, is a race).
        with pytest.raises((ClamatorTransportError, RpcError)):
            await arith.slow_add(SlowAddParams(a=1, b=2, sleepMs=10_000), timeout_ms=300)
        for _ in range(100):
            if stopped_after:
                break
            await asyncio.sleep(0.02)
        assert stopped_after and stopped_after[0] < 0.4, stopped_after
        seen.clear()
        await NotificationsClient(client).ping(PingParams(tag="x"))
        await asyncio.wait_for(fixture.ping_seen.wait(), 5)
        assert seen == [(None, None)]
    finally:
        await client.stop()
        await server.stop()
    if transport != "redis":
        return
    # A 0.1.9 caller sends no timeout: no deadline; the id is there.
    seen.clear()
    server = rs.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix)
    server.register_service(arith_contract, fixture)
    old = released.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await server.start()
    await old.start()
    try:
        assert (await ArithClient(old).add(AddParams(a=1, b=2))).sum == 3
        assert len(seen) == 1 and seen[0][0] is None and seen[0][1], seen
    finally:
        await stop_client(released, old)
        await server.stop()


async def test_a_handler_longer_than_the_claim_idle_runs_once(impl, redis_url, prefix):
    """The heartbeat: clamator-rs refreshes the entries its handlers run (every third of
    `consumer_claim_idle_ms`), so a handler may take longer than the claim idle. 0.1.9 has no
    heartbeat: its own reclaim loop claims the running entry and runs it again (the spec's
    1000 ms / 2.5 s case)."""
    fixture = Fixture()
    if impl.name == "rs":  # the keyword reaches the engine
        too_short = impl.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix,
                                              consumer_claim_idle_ms=50)
        too_short.register_service(arith_contract, fixture)
        with pytest.raises(ValueError, match="claim"):
            await too_short.start()
    server = impl.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix,
                                       consumer_claim_idle_ms=1000)
    server.register_service(arith_contract, fixture)
    client = impl.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await server.start()
    await client.start()
    try:
        result = await ArithClient(client).slow_add(SlowAddParams(a=1, b=2, sleepMs=2500),
                                                    timeout_ms=10_000)
        assert result.sum == 3
        await asyncio.sleep(0.3)
        if impl.name == "released":
            assert fixture.slow_runs >= 2, fixture.slow_runs
        else:
            assert fixture.slow_runs == 1, fixture.slow_runs
    finally:
        await stop_client(impl, client)
        await server.stop()
