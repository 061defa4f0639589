"""TLS to Redis (`rediss://`): the wheel carries rustls, so a TLS Redis object of the 0.1.9
API (`redis=Redis(ssl=True, ssl_ca_certs=...)`) is taken over with its CA, and clamator-rs
and 0.1.9 serve each other over it."""

from __future__ import annotations

import asyncio

import pytest
from arith import AddParams, ArithClient, arith_contract
from clamator_protocol import ClamatorTransportError
from redis.asyncio import Redis
from test_behaviour import Fixture, stop_client


def tls_client_object(tls_redis, **extra):
    return Redis(host="127.0.0.1", port=tls_redis.port, ssl=True, ssl_ca_certs=tls_redis.ca,
                 **extra)


@pytest.mark.parametrize(("server_impl", "client_impl"),
                         [("rs", "rs"), ("rs", "released"), ("released", "rs")])
async def test_calls_over_tls(server_impl, client_impl, tls_redis, prefix, request):
    server_mod = request.getfixturevalue(server_impl).redis
    client_side = request.getfixturevalue(client_impl)
    server = server_mod.RedisRpcServer(redis=tls_client_object(tls_redis), key_prefix=prefix)
    server.register_service(arith_contract, Fixture())
    client = client_side.redis.RedisRpcClient(redis=tls_client_object(tls_redis),
                                              key_prefix=prefix)
    await server.start()
    await client.start()
    try:
        results = await asyncio.gather(
            *(ArithClient(client).add(AddParams(a=i, b=1)) for i in range(50)))
        assert [r.sum for r in results] == [i + 1.0 for i in range(50)]
    finally:
        await stop_client(client_side, client)
        await server.stop()


async def test_an_untrusted_server_certificate_is_refused(rs, tls_redis, prefix):
    """`rediss://` verifies against the system's roots, which do not hold the test CA."""
    client = rs.redis.RedisRpcClient(redis_url=f"rediss://127.0.0.1:{tls_redis.port}",
                                     key_prefix=prefix)
    with pytest.raises(ClamatorTransportError, match="invalid peer certificate"):
        await client.start()


async def test_unverified_tls_is_refused_with_what_to_do(rs, tls_redis, prefix):
    with pytest.raises(ValueError, match="ssl_ca_certs"):
        rs.redis.RedisRpcClient(redis=tls_client_object(tls_redis, ssl_cert_reqs="none"),
                                key_prefix=prefix)
