#!/usr/bin/env bash
# The benchmark suite's headline rows on both engines: Redis (the machine's redis-server) and
# Valkey 8.1 (scripts/setup-valkey.sh), in alternating rounds on one private server of each.
#   Rust client -> Rust server:     arith.add @1 (p50) and @256 (calls/s)
#   Python client -> Python server: arith.add @50 (calls/s; the 0.1.9 client fails above ~60)
# Usage: bash scripts/engines.sh [rounds]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release -q -p clamator-cli -p clamator-interop
bash scripts/setup-python.sh >/dev/null
bash scripts/setup-valkey.sh >/dev/null
bin=target/release
py=$PWD/.venv/bin/python
work=target/engines
mkdir -p "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A port pid binary=([redis]=redis-server [valkey]=.tools/valkey/bin/valkey-server)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  for e in redis valkey; do [ -n "${pid[$e]:-}" ] && kill "${pid[$e]}" 2>/dev/null; done
  true
}
trap cleanup EXIT
for e in redis valkey; do
  port[$e]=$(free_port)
  "${binary[$e]}" --port "${port[$e]}" --save '' --appendonly no >/dev/null &
  pid[$e]=$!
  until redis-cli -p "${port[$e]}" ping >/dev/null 2>&1; do sleep 0.1; done
  echo "$e: $(redis-cli -p "${port[$e]}" info server | grep -E '^(redis|valkey)_version' | tr -d '\r' | paste -sd' ')" >&2
done

field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
start() { # lang url prefix
  if [ "$1" = rust ]; then "$bin/clamator-interop-server" --redis-url "$2" --prefix "$3" > "$work/server.out" 2>/dev/null &
  else (cd interop/py && exec "$py" server.py --redis-url "$2" --prefix "$3" --instance-id bench) > "$work/server.out" 2>/dev/null &
  fi
  server_pid=$!
  until grep -q READY "$work/server.out" 2>/dev/null; do sleep 0.05; done
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=; }

results=$work/results.txt
: > "$results"
for r in $(seq 1 "$rounds"); do
  for e in redis valkey; do
    url="redis://127.0.0.1:${port[$e]}"
    start rust "$url" "rs$r"
    one=$("$bin/clamator" --redis-url "$url" --prefix "rs$r" bench --method arith.add --params '{"a":1,"b":2}' --calls 3000 --concurrency 1 --json | field p50_ms)
    many=$("$bin/clamator" --redis-url "$url" --prefix "rs$r" bench --method arith.add --params '{"a":1,"b":2}' --calls 30000 --concurrency 256 --json | field calls_per_s)
    stop
    start py "$url" "py$r"
    pyc=$(cd interop/py && "$py" bench.py redis --redis-url "$url" --prefix "py$r" --method arith.add --params '{"a":1,"b":2}' --calls 3000 --concurrency 50 | field calls_per_s)
    stop
    redis-cli -p "${port[$e]}" FLUSHALL >/dev/null
    echo "$e $r $one $many $pyc" >> "$results"
    printf '%s round %s: rust @1 p50 %.3f ms, rust @256 %.0f calls/s, python @50 %.0f calls/s\n' "$e" "$r" "$one" "$many" "$pyc" >&2
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda e, i: statistics.median(float(r[i]) for r in rows if r[0] == e)
print(f"| engine (median of {len(rows)//2} alternating rounds) | Rust→Rust p50 @1 | Rust→Rust calls/s @256 | Python→Python calls/s @50 | Rust @256 / Python @50 |")
print("|---|---|---|---|---|")
for e, name in [("redis", "Redis 7.0"), ("valkey", "Valkey 8.1")]:
    print(f"| {name} | {med(e,2):.3f} ms | {med(e,3):.0f} | {med(e,4):.0f} | {med(e,3)/med(e,4):.1f}× |")
PY
