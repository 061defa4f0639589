"""Python interop server on the released clamator 0.1.9: same flags and protocol as
clamator-interop-server (READY on stdout; HANDLED:<n> on stderr after SIGTERM)."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from clamator_over_redis import RedisRpcServer
from clamator_protocol import RpcError

from contracts import (
    AddResult, DivideResult, EchoTextResult, arith_contract, notifications_contract,
)


class Fixture:
    def __init__(self) -> None:
        self.handled = 0

    async def add(self, p):
        self.handled += 1
        return AddResult(sum=p.a + p.b)

    async def divide(self, p):
        self.handled += 1
        if p.b == 0:
            raise RpcError(-32000, "division by zero")
        return DivideResult(q=p.a / p.b)

    async def echo_text(self, p):
        self.handled += 1
        return EchoTextResult(text=p.text)

    async def slow_add(self, p):
        self.handled += 1
        await asyncio.sleep(p.sleep_ms / 1000)
        return AddResult(sum=p.a + p.b)

    async def ping(self, p):
        self.handled += 1


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis-url")
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--instance-id")
    ap.add_argument("--claim-idle-ms", type=int, default=60_000)
    ap.add_argument("--concurrency", type=int)  # accepted for symmetry; 0.1.9 is serial
    args = ap.parse_args()
    fixture = Fixture()
    server = RedisRpcServer(
        redis_url=args.redis_url, key_prefix=args.prefix, instance_id=args.instance_id,
        consumer_claim_idle_ms=args.claim_idle_ms,
    )
    server.register_service(arith_contract, fixture)
    server.register_service(notifications_contract, fixture)
    await server.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    print(f"HANDLED:{fixture.handled}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
