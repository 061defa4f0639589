"""Faults from Python, on clamator-rs: a server SIGKILLed under load, Redis restarted, stop()
with calls in flight, a handler that never returns, Ctrl-C. Servers that are killed run as
processes (interop/py/server.py on this wheel); Redis is the test's own redis-server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from arith import AddParams, ArithClient, SlowAddParams, arith_contract
from clamator_protocol import ClamatorTransportError
from conftest import ROOT
from test_behaviour import Fixture

SERVER_PY = ROOT / "interop" / "py" / "server.py"


def spawn_server(redis_url: str, prefix: str, instance: str, claim_idle_ms: int = 1000):
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_PY), "--redis-url", redis_url, "--prefix", prefix,
         "--instance-id", instance, "--claim-idle-ms", str(claim_idle_ms)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CLAMATOR_PY_IMPL": "rs"},
    )
    line = proc.stdout.readline()
    assert line.strip() == "READY", f"server did not start: {line!r} {proc.stderr.read()}"
    return proc


async def test_server_sigkill_under_load(rs, redis_url, prefix):
    """Two server processes; one is SIGKILLed with calls in flight: every call is answered
    (the survivor claims what the dead one held after the claim idle time)."""
    a = spawn_server(redis_url, prefix, "a")
    b = spawn_server(redis_url, prefix, "b")
    client = rs.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix, default_timeout_ms=30_000)
    await client.start()
    arith = ArithClient(client)
    try:
        calls = [
            asyncio.ensure_future(arith.slow_add(SlowAddParams(a=i, b=1, sleepMs=200)))
            for i in range(200)
        ]
        await asyncio.sleep(0.3)
        a.kill()
        results = await asyncio.gather(*calls)
        assert [r.sum for r in results] == [i + 1.0 for i in range(200)]
    finally:
        a.kill()
        b.send_signal(signal.SIGTERM)
        b.wait(10)
        await client.stop()


async def test_redis_restart(rs, redis_server, prefix, caplog):
    """Redis killed and started again on its port (empty: no persistence): calls made after it
    is back are answered; the server recreates its stream and group, and says so through
    Python's logging (the engine's warnings, under `clamator_rs.<crate>`)."""
    caplog.set_level(logging.WARNING)
    url = redis_server.url
    server = rs.redis.RedisRpcServer(redis_url=url, key_prefix=prefix)
    server.register_service(arith_contract, Fixture())
    client = rs.redis.RedisRpcClient(redis_url=url, key_prefix=prefix, default_timeout_ms=20_000)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    assert (await arith.add(AddParams(a=1, b=1))).sum == 2
    redis_server.kill()
    await asyncio.sleep(0.5)
    redis_server.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            assert (await arith.add(AddParams(a=2, b=2), timeout_ms=2000)).sum == 4
            break
        except ClamatorTransportError:
            if time.monotonic() > deadline:
                raise
    results = await asyncio.gather(*(arith.add(AddParams(a=i, b=0)) for i in range(100)))
    assert [r.sum for r in results] == [float(i) for i in range(100)]
    await client.stop()
    await server.stop()
    engine = [(r.name, r.levelname, r.getMessage()) for r in caplog.records
              if r.name.startswith("clamator_rs.")]
    assert any(name == "clamator_rs.clamator_over_redis" and level == "WARNING"
               for name, level, _ in engine), engine


async def test_stop_with_calls_in_flight(rs, redis_url, prefix):
    """stop() lets running handlers finish and answer (within the grace)."""
    server = rs.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix)
    server.register_service(arith_contract, Fixture())
    client = rs.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    calls = [asyncio.ensure_future(arith.slow_add(SlowAddParams(a=i, b=1, sleepMs=300)))
             for i in range(20)]
    await asyncio.sleep(0.1)
    await server.stop()
    results = await asyncio.gather(*calls)
    assert [r.sum for r in results] == [i + 1.0 for i in range(20)]
    await client.stop()


async def test_handler_never_returning(rs, redis_url, prefix):
    """A handler that never returns: its caller gets "call timeout"; stop(grace_ms=…) returns
    after the grace and cancels the handler; other calls keep being served meanwhile."""
    never = asyncio.Event()
    cancelled = asyncio.Event()

    class Stuck(Fixture):
        async def slow_add(self, p):
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    server = rs.redis.RedisRpcServer(redis_url=redis_url, key_prefix=prefix)
    server.register_service(arith_contract, Stuck())
    client = rs.redis.RedisRpcClient(redis_url=redis_url, key_prefix=prefix)
    await server.start()
    await client.start()
    arith = ArithClient(client)
    stuck = asyncio.ensure_future(arith.slow_add(SlowAddParams(a=1, b=1, sleepMs=0), timeout_ms=500))
    assert (await arith.add(AddParams(a=1, b=2))).sum == 3
    with pytest.raises(ClamatorTransportError, match="call timeout"):
        await stuck
    started = time.monotonic()
    await server.stop(grace_ms=300)
    assert time.monotonic() - started < 3
    # after the grace the handler is cancelled (as 0.1.9's stop cancels it), not left pending
    await asyncio.wait_for(cancelled.wait(), 2)
    await client.stop()


def test_ctrl_c(redis_url, prefix):
    """SIGINT (Ctrl-C) to a serving process: it stops gracefully and exits 0."""
    proc = spawn_server(redis_url, prefix, "ctrl-c")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0, proc.stderr.read()
    assert "HANDLED:0" in proc.stderr.read()
