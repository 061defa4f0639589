"""End to end over one Redis, same Python handler (`arith.add`), same run: the released 0.1.9
packages against clamator-rs, each side in its own process. Prints calls/s per row, the ratio to
the best 0.1.9 row, errors, and the server's cost per call on its Python (asyncio) thread.

    bash scripts/bench-python.sh            (builds the release wheel, starts its own Redis)
    python e2e.py <redis-url> [seconds]     (from a venv with both packages)
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "interop", "generated", "py"))

from arith import AddParams, AddResult, ArithClient, ArithService, arith_contract  # noqa: E402


def module(impl: str):
    return importlib.import_module("clamator_rs.over_redis" if impl == "rs" else "clamator_over_redis")


class Add(ArithService):
    def __init__(self) -> None:
        self.handled = 0

    async def add(self, p):
        self.handled += 1
        return AddResult(sum=p.a + p.b)

    async def divide(self, p):
        raise NotImplementedError

    async def echo_text(self, p):
        raise NotImplementedError

    async def slow_add(self, p):
        raise NotImplementedError


async def serve(impl: str, url: str, prefix: str) -> None:
    server = module(impl).RedisRpcServer(redis_url=url, key_prefix=prefix)
    handler = Add()
    server.register_service(arith_contract, handler)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await server.start()
    print("READY", flush=True)
    cpu0, proc0 = time.thread_time(), time.process_time()
    await stop.wait()
    cpu, proc = time.thread_time() - cpu0, time.process_time() - proc0
    print(f"{handler.handled} {cpu} {proc}", flush=True)
    os._exit(0)  # the 0.1.9 stop can wait a minute (see the README); the numbers are out


async def load(impl: str, url: str, prefix: str, in_flight: int, seconds: float):
    client = module(impl).RedisRpcClient(redis_url=url, key_prefix=prefix)
    await client.start()
    arith = ArithClient(client)
    done = errors = 0
    first_error = None
    deadline = 0.0

    async def worker() -> None:
        nonlocal done, errors, first_error
        i = 0
        while time.perf_counter() < deadline:
            try:
                await arith.add(AddParams(a=i, b=1))
                done += 1
            except Exception as e:  # noqa: BLE001  # counted and reported
                errors += 1
                first_error = first_error or repr(e)
            i += 1

    deadline = time.perf_counter() + 0.5  # warm-up
    await asyncio.gather(*(worker() for _ in range(min(in_flight, 16))))
    done = errors = 0
    started = time.perf_counter()
    cpu0, proc0 = time.thread_time(), time.process_time()
    deadline = started + seconds
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    rate = done / (time.perf_counter() - started)
    cpu = (time.thread_time() - cpu0) / max(done, 1) * 1e6
    proc = (time.process_time() - proc0) / max(done, 1) * 1e6
    return rate, errors, first_error, cpu, proc


def run_row(server_impl: str, client_impl: str, url: str, in_flight: int, seconds: float):
    prefix = f"bench-py-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, __file__, "serve", server_impl, url, prefix],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "READY"
    rate, errors, first_error, c_cpu, c_proc = asyncio.run(
        load(client_impl, url, prefix, in_flight, seconds))
    proc.send_signal(signal.SIGTERM)
    handled, cpu, total = proc.stdout.readline().split()
    proc.wait(30)
    n = max(int(handled), 1)
    return rate, errors, first_error, float(cpu) / n * 1e6, float(total) / n * 1e6, c_cpu, c_proc


def main() -> None:
    url = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 5
    rows = [
        ("0.1.9", "0.1.9", 1), ("0.1.9", "0.1.9", 16), ("0.1.9", "0.1.9", 48),
        ("rs", "rs", 64), ("rs", "rs", 256), ("rs", "rs", 2000),
        ("rs", "0.1.9", 48),
        ("0.1.9", "rs", 48), ("0.1.9", "rs", 256),
    ]
    print(f"Python handler arith.add over Redis {url}; {seconds:.0f} s per row")
    print("µs/call: CPU per call of the server's and the client's Python (asyncio) thread, and of"
          " their whole process (tokio threads included)")
    print(f"{'server':<8}{'client':<8}{'in flight':>10}{'calls/s':>10}{'x best 0.1.9':>14}"
          f"{'errors':>8}{'srv py':>9}{'srv all':>9}{'cli py':>9}{'cli all':>9}")
    best = None
    for server_impl, client_impl, in_flight in rows:
        s = "rs" if server_impl == "rs" else "released"
        c = "rs" if client_impl == "rs" else "released"
        rate, errors, first_error, s_py, s_all, c_py, c_all = run_row(s, c, url, in_flight, seconds)
        if server_impl == client_impl == "0.1.9":
            best = max(best or 0, rate)
        ratio = f"{rate / best:.1f}x" if best else "-"
        print(f"{server_impl:<8}{client_impl:<8}{in_flight:>10}{rate:>10,.0f}{ratio:>14}"
              f"{errors:>8}{s_py:>9.1f}{s_all:>9.1f}{c_py:>9.1f}{c_all:>9.1f}", flush=True)
        if first_error:
            print(f"        first error: {first_error[:160]}")


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        main()
