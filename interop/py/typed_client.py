"""Calls a server through the *generated* typed Python clients (interop/generated/py) on the
released clamator 0.1.9: `python typed_client.py <redis_url> <prefix>`. Prints one JSON object
with what each call returned."""
from __future__ import annotations

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "generated", "py"))

if os.environ.get("CLAMATOR_PY_IMPL") == "rs":  # the clamator-rs wheel (Rust engine), same API
    from clamator_rs.over_redis import RedisRpcClient
else:
    from clamator_over_redis import RedisRpcClient
from clamator_protocol import RpcError  # noqa: E402

from arith import AddParams, ArithClient, EchoText, SlowAddParams  # noqa: E402
from notifications import NotificationsClient, PingParams  # noqa: E402


async def main() -> None:
    client = RedisRpcClient(redis_url=sys.argv[1], key_prefix=sys.argv[2], default_timeout_ms=5000)
    await client.start()
    arith, notes = ArithClient(client), NotificationsClient(client)
    out = {}
    out["add"] = (await arith.add(AddParams(a=2, b=3))).model_dump()
    out["echoText"] = (await arith.echo_text(EchoText(text="héllo ✓"))).model_dump()
    # populate_by_name: both spellings construct
    out["slowAdd"] = (await arith.slow_add(SlowAddParams(a=1, b=2, sleep_ms=5))).model_dump()
    out["slowAddAlias"] = (await arith.slow_add(SlowAddParams(a=1, b=2, sleepMs=5), timeout_ms=3000)).model_dump()
    try:
        await arith.divide(AddParams(a=1, b=0))
        out["divide"] = "no error"
    except RpcError as e:
        out["divide"] = {"code": e.code, "message": e.message}
    await notes.ping(PingParams())
    await notes.ping(PingParams(tag="x"))
    out["ping"] = "sent"
    print(json.dumps(out), flush=True)
    os._exit(0)  # clamator-over-redis 0.1.9's client stop() hangs with redis-py 8.1


if __name__ == "__main__":
    asyncio.run(main())
