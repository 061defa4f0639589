"""Python interop client on the released clamator 0.1.9: reads the same JSON config on stdin as
clamator-interop-client and prints {"results": [...]} with the five result shapes of §6.2."""
from __future__ import annotations

import asyncio
import json
import os
import sys

from clamator_over_redis import RedisRpcClient
from clamator_protocol import ClamatorTransportError, RpcError


async def run_one(client, call):
    service, _, method = call["method"].partition(".")
    try:
        if call.get("notification"):
            await client.notify(service, method, call.get("params"))
            return {"ok": True, "kind": "notification"}
        result = await client.call(service, method, call.get("params"))
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
    cfg = json.loads(sys.stdin.read())
    client = RedisRpcClient(
        redis_url=cfg.get("redisUrl"), key_prefix=cfg["keyPrefix"],
        default_timeout_ms=cfg.get("defaultTimeoutMs", 5000),
    )
    await client.start()
    n = cfg.get("concurrent") or 1
    if n > 1:
        batches = await asyncio.gather(*(run_list(client, cfg["calls"]) for _ in range(n)))
        results = [r for b in batches for r in b]
    else:
        results = await run_list(client, cfg["calls"])
    print(json.dumps({"results": results}), flush=True)
    # clamator-over-redis 0.1.9 with redis-py 8.1: RedisRpcClient.stop() hangs for ~20 s after
    # a call (cancelling the blocked XREAD). Bound it; the process exits right after.
    try:
        await asyncio.wait_for(client.stop(), timeout=2)
    except Exception:  # noqa: BLE001
        pass
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
