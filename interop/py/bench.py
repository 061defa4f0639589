"""Load generator on the released Python clamator 0.1.9 (closed loop, like `clamator bench`).

  python bench.py redis  --redis-url U --prefix P --method svc.m --params JSON|- --calls N --concurrency K
  python bench.py memory --method arith.add --params JSON --calls N --concurrency K

Prints one JSON object: calls, ok, elapsed_s, calls_per_s, p50_ms, p90_ms, p99_ms, max_ms,
errors (by kind), concurrency. `memory` runs the Python server and client in this process on
clamator-over-memory."""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time

from clamator_protocol import ClamatorTransportError, RpcError


def pct(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    rank = math.ceil(p / 100 * len(sorted_ms))
    return sorted_ms[min(max(rank, 1), len(sorted_ms)) - 1]


async def run(client, service, method, params, calls, concurrency, timeout_ms):
    counter = iter(range(calls))
    lat, errors = [], {}

    async def worker():
        for _ in counter:
            t = time.perf_counter()
            try:
                await client.call(service, method, params, timeout_ms=timeout_ms)
                lat.append((time.perf_counter() - t) * 1000)
            except RpcError as e:
                errors[f"rpc {e.code}"] = errors.get(f"rpc {e.code}", 0) + 1
            except ClamatorTransportError as e:
                k = "timeout" if "timeout" in str(e) else "transport"
                errors[k] = errors.get(k, 0) + 1
            except Exception:  # noqa: BLE001
                errors["other"] = errors.get("other", 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    lat.sort()
    n = len(lat) + sum(errors.values())
    return {
        "calls": n, "ok": len(lat), "elapsed_s": elapsed, "calls_per_s": n / elapsed if elapsed else 0,
        "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
        "max_ms": lat[-1] if lat else 0.0, "errors": errors, "concurrency": concurrency,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["redis", "memory"])
    ap.add_argument("--redis-url")
    ap.add_argument("--redis-cluster")  # seed URLs, comma-separated (a redis.asyncio RedisCluster)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--method", required=True)
    ap.add_argument("--params", default="{}")
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--timeout-ms", type=int, default=30_000)
    a = ap.parse_args()
    service, _, method = a.method.partition(".")
    params = json.loads(sys.stdin.read() if a.params == "-" else a.params)
    if a.mode == "redis":
        from clamator_over_redis import RedisRpcClient
        cluster = None
        if a.redis_cluster:
            from redis.asyncio.cluster import RedisCluster
            cluster = RedisCluster.from_url(a.redis_cluster.split(",")[0])
            await cluster.initialize()  # see client.py
        client = RedisRpcClient(
            redis=cluster, redis_url=None if cluster else a.redis_url, key_prefix=a.prefix,
            default_timeout_ms=a.timeout_ms,
        )
        await client.start()
        report = await run(client, service, method, params, a.calls, a.concurrency, a.timeout_ms)
    else:
        from clamator_over_memory import MemoryBus, MemoryRpcClient, MemoryRpcServer
        from server import Fixture, arith_contract, notifications_contract
        bus = MemoryBus()
        server = MemoryRpcServer(bus=bus)
        fixture = Fixture()
        server.register_service(arith_contract, fixture)
        server.register_service(notifications_contract, fixture)
        await server.start()
        client = MemoryRpcClient(bus=bus)
        await client.start()
        report = await run(client, service, method, params, a.calls, a.concurrency, a.timeout_ms)
    print(json.dumps(report), flush=True)
    # clamator-over-redis 0.1.9's client stop() hangs with redis-py 8.1; nothing to clean up here.
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(main())
