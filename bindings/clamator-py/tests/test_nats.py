"""clamator_rs.over_nats: the same server and client API over NATS JetStream."""

from __future__ import annotations

import asyncio

import pytest
from arith import AddParams, ArithClient, SlowAddParams, arith_contract
from clamator_protocol import ClamatorTransportError, RpcError
from clamator_rs.over_nats import NatsRpcClient, NatsRpcServer
from notifications import NotificationsClient, PingParams, notifications_contract
from test_behaviour import Fixture


async def test_round_trip_errors_notifications_timeouts(nats_url, prefix):
    server = NatsRpcServer(nats_url=nats_url, key_prefix=prefix)
    fixture = Fixture()
    server.register_service(arith_contract, fixture)
    server.register_service(notifications_contract, fixture)
    client = NatsRpcClient(nats_url=nats_url, key_prefix=prefix)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    results = await asyncio.gather(*(arith.add(AddParams(a=i, b=1)) for i in range(500)))
    assert [r.sum for r in results] == [i + 1.0 for i in range(500)]
    with pytest.raises(RpcError) as e:
        await arith.divide(AddParams(a=1, b=0))
    assert (e.value.code, e.value.message) == (-32000, "division by zero")
    with pytest.raises(RpcError) as e:
        await client.call("arith", "add", {"a": 1})
    assert e.value.code == -32602
    await NotificationsClient(client).ping(PingParams(tag="n"))
    await asyncio.wait_for(fixture.ping_seen.wait(), 5)
    with pytest.raises(ClamatorTransportError, match="call timeout"):
        await arith.slow_add(SlowAddParams(a=1, b=1, sleepMs=2000), timeout_ms=200)
    await client.stop()
    await server.stop()


async def test_unreachable_nats_names_the_url(prefix):
    client = NatsRpcClient(nats_url="nats://127.0.0.1:1", key_prefix=prefix)
    with pytest.raises(ClamatorTransportError, match="127.0.0.1:1"):
        await client.start()


async def test_a_handler_longer_than_the_ack_wait_runs_once(nats_url, prefix):
    """`ack_wait_ms` is the time to notice a dead server; running handlers keep their requests
    with in-progress acks (the heartbeat), so a longer handler is not delivered again."""
    fixture = Fixture()
    too_short = NatsRpcServer(nats_url=nats_url, key_prefix=prefix, ack_wait_ms=100)
    too_short.register_service(arith_contract, fixture)
    with pytest.raises(ValueError, match="ack_wait must be at least 300ms"):
        await too_short.start()  # the keyword reaches the engine
    server = NatsRpcServer(nats_url=nats_url, key_prefix=prefix, ack_wait_ms=500)
    server.register_service(arith_contract, fixture)
    client = NatsRpcClient(nats_url=nats_url, key_prefix=prefix)
    await server.start()
    await client.start()
    try:
        result = await ArithClient(client).slow_add(SlowAddParams(a=1, b=2, sleepMs=2000),
                                                    timeout_ms=10_000)
        assert result.sum == 3
        await asyncio.sleep(0.6)
        assert fixture.slow_runs == 1, fixture.slow_runs
    finally:
        await client.stop()
        await server.stop()
