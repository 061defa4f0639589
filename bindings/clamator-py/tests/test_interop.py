"""clamator-rs beside the released 0.1.9 packages on one Redis: each as client of the other,
and both in one worker pool. (Rust client/server against clamator-rs: the Rust interop suite,
run by scripts/test-python.sh with the harness on this wheel.)"""

from __future__ import annotations

import asyncio
from collections import Counter

from arith import AddParams, ArithClient, SlowAddParams, arith_contract
from clamator_protocol import RpcError
from notifications import NotificationsClient, PingParams, notifications_contract
from test_behaviour import Fixture, stop_client

import pytest


@pytest.mark.parametrize("server_impl,client_impl", [("rs", "released"), ("released", "rs")])
async def test_each_as_client_of_the_other(server_impl, client_impl, redis_url, prefix, request):
    s_impl = request.getfixturevalue(server_impl)
    c_impl = request.getfixturevalue(client_impl)
    server = s_impl.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix)
    client = c_impl.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    fixture = Fixture()
    server.register_service(arith_contract, fixture)
    server.register_service(notifications_contract, fixture)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    results = await asyncio.gather(*(arith.add(AddParams(a=i, b=0.5)) for i in range(40)))
    assert [r.sum for r in results] == [i + 0.5 for i in range(40)]
    with pytest.raises(RpcError) as e:
        await arith.divide(AddParams(a=1, b=0))
    assert (e.value.code, e.value.message) == (-32000, "division by zero")
    text = "ünïcødé ✓ " * 1000
    assert (await client.call("arith", "echoText", {"text": text})) == {"text": text}
    await NotificationsClient(client).ping(PingParams(tag="x"))
    await asyncio.wait_for(fixture.ping_seen.wait(), 5)
    await stop_client(c_impl, client)
    await server.stop()


async def test_mixed_pool(rs, released, redis_url, prefix):
    """One 0.1.9 server and one clamator-rs server share the `arith` consumer group: every call
    is answered once, and both take part."""
    fixtures = {"released": Fixture(), "rs": Fixture()}
    counts: Counter[str] = Counter()
    servers = []
    for impl in (released, rs):
        server = impl.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix)
        fixture = fixtures[impl.name]
        original = fixture.slow_add

        async def slow_add(p, name=impl.name, original=original):
            counts[name] += 1
            return await original(p)

        fixture.slow_add = slow_add
        server.register_service(arith_contract, fixture)
        await server.start()
        servers.append(server)
    client = rs.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await client.start()
    arith = ArithClient(client)
    n = 200
    results = await asyncio.gather(
        *(arith.slow_add(SlowAddParams(a=i, b=1, sleepMs=5)) for i in range(n))
    )
    assert [r.sum for r in results] == [i + 1.0 for i in range(n)]
    assert sum(counts.values()) == n, counts
    assert counts["released"] > 0 and counts["rs"] > 0, counts
    await client.stop()
    for server in servers:
        await server.stop()
