"""Python interop client on the released clamator 0.1.9: reads the same JSON config on stdin as
clamator-interop-client and prints {"results": [...]} with the five result shapes of §6.2."""
from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import sys
import time

if os.environ.get("CLAMATOR_PY_IMPL") == "rs":  # the clamator-rs wheel (Rust engine), same API
    from clamator_rs.over_redis import RedisRpcClient
else:
    from clamator_over_redis import RedisRpcClient
from clamator_protocol import ClamatorTransportError, RpcError


def log(msg: str) -> None:
    print(f"{time.monotonic():.3f} {msg}", file=sys.stderr, flush=True)


def dump_tasks() -> None:
    """SIGUSR1: print every asyncio task's stack to stderr (the test sends it before killing a
    client that hangs)."""
    for task in asyncio.all_tasks():
        log(f"task {task!r}")
        task.print_stack(file=sys.stderr)
    faulthandler.dump_traceback(file=sys.stderr)


async def run_one(client, call):
    service, _, method = call["method"].partition(".")
    log(f"call {call['method']} ({len(json.dumps(call.get('params')))} bytes of params)")
    try:
        if call.get("notification"):
            await client.notify(service, method, call.get("params"))
            return {"ok": True, "kind": "notification"}
        result = await client.call(service, method, call.get("params"))
        log(f"result of {call['method']}")
        return {"ok": True, "kind": "result", "result": result}
    except RpcError as e:
        return {"ok": False, "kind": "rpc-error", "code": e.code, "message": e.message, "data": e.data}
    except ClamatorTransportError as e:
        return {"ok": False, "kind": "transport-error", "message": str(e)}
    except Exception as e:  # noqa: BLE001
        return {"ok": False, "kind": "unknown-error", "message": f"{type(e).__name__}: {e}"}


async def run_list(client, calls):
    return [await run_one(client, c) for c in calls]


async def main() -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    cfg = json.loads(sys.stdin.read())
    log("config read")
    cluster = None
    if cfg.get("redisCluster"):
        from redis.asyncio.cluster import RedisCluster
        cluster = RedisCluster.from_url(cfg["redisCluster"][0])
        # initialize before 0.1.9 uses it: RedisCluster initializes lazily on its first
        # command, and 0.1.9's reply loop and first calls racing that initialization fail
        # some calls with "Connection lost" (redis-py 8.1; about 1 run in 3 at 40 calls)
        await cluster.initialize()
    client = RedisRpcClient(
        redis=cluster, redis_url=None if cluster else cfg.get("redisUrl"),
        key_prefix=cfg["keyPrefix"], default_timeout_ms=cfg.get("defaultTimeoutMs", 5000),
    )
    await client.start()
    log("client started")
    n = cfg.get("concurrent") or 1
    if n > 1:
        batches = await asyncio.gather(*(run_list(client, cfg["calls"]) for _ in range(n)))
        results = [r for b in batches for r in b]
    else:
        results = await run_list(client, cfg["calls"])
    log("calls done")
    print(json.dumps({"results": results}), flush=True)
    # clamator-over-redis 0.1.9 with redis-py 8.1: RedisRpcClient.stop() cancels the reply
    # loop's blocked XREAD, and that cancellation sometimes never completes (the task stays
    # "cancelling" for good, seen about 1 run in 20 on a loaded machine). asyncio.wait_for would
    # wait for the cancelled stop() to finish and hang with it, so give stop() 2 s without
    # cancelling it; the process exits right after either way.
    await asyncio.wait({asyncio.ensure_future(client.stop())}, timeout=2)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
