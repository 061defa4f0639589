"""The bridge measurement of issue 31: one trivial round trip between asyncio and tokio, through
per-call futures (pyo3-async-runtimes) and through the batched bridge clamator_rs uses, in both
directions, at several concurrencies. Prints calls/s and the ratio. No broker involved.

    bash scripts/bench-python.sh --bridge     (builds the release wheel first)
"""

from __future__ import annotations

import asyncio
import sys
import time

from clamator_rs import _native

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000


async def client_future(concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await _native.bench_future_echo(b"x" * 32)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(N)))
    return N / (time.perf_counter() - t)


async def client_bridge(concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    bridge = _native.Bridge()
    pending: dict[int, asyncio.Future[bytes]] = {}

    def drain() -> None:
        for event in bridge.drain():
            pending.pop(event[1]).set_result(event[3])

    loop.add_reader(bridge.fileno(), drain)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            fut = loop.create_future()
            pending[i] = fut
            _native.bench_bridge_echo(bridge, i, b"x" * 32)
            await fut

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(N)))
    rate = N / (time.perf_counter() - t)
    loop.remove_reader(bridge.fileno())
    return rate


async def handler(payload: bytes) -> bytes:
    return payload


async def server_future(concurrency: int) -> float:
    seconds = await _native.bench_future_handlers(handler, N, concurrency)
    return N / seconds


async def server_bridge(concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    bridge = _native.Bridge()
    driver = _native.BenchDriver()
    finished = loop.create_future()

    async def run(token: int, payload: bytes) -> None:
        await handler(payload)
        driver.complete(token)

    def drain() -> None:
        for event in bridge.drain():
            if event[0] == "q":
                loop.create_task(run(event[1], event[4]))
            else:
                finished.set_result(float(event[3]))

    loop.add_reader(bridge.fileno(), drain)
    driver.run(bridge, 1 << 62, N, concurrency)
    seconds = await finished
    loop.remove_reader(bridge.fileno())
    return N / seconds


async def main() -> None:
    print(f"{N} round trips each; calls/s (higher is better)")
    print(f"{'direction':<34}{'in flight':>10}{'per-call future':>17}{'batched bridge':>16}{'ratio':>8}")
    for name, future, batched in (
        ("client (Python awaits tokio)", client_future, client_bridge),
        ("server (tokio runs a coroutine)", server_future, server_bridge),
    ):
        for concurrency in (1, 64, 1024):
            await future(concurrency)  # warm-up
            a = await future(concurrency)
            b = await batched(concurrency)
            print(f"{name:<34}{concurrency:>10}{a:>17,.0f}{b:>16,.0f}{b / a:>7.1f}x")


asyncio.run(main())
