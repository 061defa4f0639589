"""Why a clamator-rs client in front of a 0.1.9 server is not faster than the 0.1.9 pair: the
same 0.1.9 server behind each client, rows alternated, with the server's CPU per entry and (with
`perf` on the machine) how often its asyncio loop polls per entry (epoll_wait calls).

    python mixed.py <redis-url> [rounds] [seconds]   (from the venv bench-python.sh makes)
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import statistics
import subprocess
import sys
import uuid

import e2e


def row(client_impl: str, url: str, in_flight: int, seconds: float) -> tuple[float, float, float]:
    prefix = f"bench-mixed-{uuid.uuid4().hex[:8]}"
    server = subprocess.Popen([sys.executable, e2e.__file__, "serve", "released", url, prefix],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().strip() == "READY"
    perf = None
    if shutil.which("perf"):
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_epoll_wait",
                                 "-p", str(server.pid)], stderr=subprocess.PIPE, text=True)
    rate = asyncio.run(e2e.load(client_impl, url, prefix, in_flight, seconds))[0]
    polls = float("nan")
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        out = perf.stderr.read().strip().split(",")
        polls = float(out[0]) if out[0].replace(".", "").isdigit() else float("nan")
    server.send_signal(signal.SIGTERM)
    handled, cpu, _ = server.stdout.readline().split()
    server.wait(30)
    return rate, float(cpu) / int(handled) * 1e6, polls / int(handled)


def main() -> None:
    url = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3  # noqa: PLR2004
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5  # noqa: PLR2004
    print(f"0.1.9 server, Python handler arith.add, {rounds} alternated rounds of {seconds:.0f} s")
    print(f"{'client':<10}{'in flight':>10}{'calls/s':>10}{'server µs/entry':>17}"
          f"{'loop polls/entry':>18}")
    for in_flight in (1, 48):
        rows: dict[str, list[tuple[float, float, float]]] = {"released": [], "rs": []}
        for _ in range(rounds):
            for client in rows:
                rows[client].append(row(client, url, in_flight, seconds))
        for client, runs in rows.items():
            name = "0.1.9" if client == "released" else "clamator-rs"
            print(f"{name:<10}{in_flight:>10}{statistics.mean(r[0] for r in runs):>10,.0f}"
                  f"{statistics.mean(r[1] for r in runs):>17.0f}"
                  f"{statistics.mean(r[2] for r in runs):>18.1f}", flush=True)


if __name__ == "__main__":
    main()
