#!/usr/bin/env bash
# clamator for TypeScript, measured (release engine): the bridge (node/bench/bridge.mjs: per
# call vs batched, both directions, no broker), then end to end over one private redis-server,
# alternating rounds: the TypeScript pair, a TypeScript client against the Rust server, the
# Rust client (`clamator bench`) against the TypeScript server, the Rust pair, and the Python
# 0.1.9 pair (interop/py: its serial server, 50 in flight at most for its client); 1 and 256
# in flight; medians of the rounds.
# Usage: bash scripts/bench-node.sh [rounds]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bash scripts/build-node.sh --release
cargo build --quiet --release -p clamator-cli -p clamator-interop
bash scripts/setup-python.sh >/dev/null
PY="$PWD/.venv/bin/python"
echo "== the bridge (node/bench/bridge.mjs)"
(cd node && node bench/bridge.mjs 50000)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null &
redis_pid=$!
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; kill "$redis_pid" 2>/dev/null; }
trap cleanup EXIT
url="redis://127.0.0.1:$port"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
results=$(mktemp)
serve() { # kind prefix
  if [ "$1" = ts ]; then
    (cd node && exec node bench/e2e.mjs server "$url" "$2") > /tmp/bench-node-server.out &
  elif [ "$1" = py ]; then
    (cd interop/py && exec "$PY" server.py --redis-url "$url" --prefix "$2") > /tmp/bench-node-server.out &
  else
    target/release/clamator-interop-server --redis-url "$url" --prefix "$2" > /tmp/bench-node-server.out &
  fi
  server_pid=$!
  until grep -q READY /tmp/bench-node-server.out 2>/dev/null; do sleep 0.05; done
}
call() { # kind prefix calls in_flight
  if [ "$1" = ts ]; then
    (cd node && node bench/e2e.mjs client "$url" "$2" "$3" "$4")
  elif [ "$1" = py ]; then
    (cd interop/py && "$PY" bench.py redis --redis-url "$url" --prefix "$2" --method arith.add --params '{"a":1,"b":2}' --calls "$3" --concurrency "$([ "$4" -gt 50 ] && echo 50 || echo "$4")")
  else
    target/release/clamator --redis-url "$url" --prefix "$2" bench --method arith.add --params '{"a":1,"b":2}' --calls "$3" --concurrency "$4" --json
  fi
}
for r in $(seq 1 "$rounds"); do
  for pair in ts:ts ts:rust rust:ts rust:rust py:py; do
    s=${pair%%:*}; c=${pair##*:}
    for k in 1 256; do
      prefix="bn$r$s$c$k"
      serve "$s" "$prefix"
      n=$([ "$k" = 1 ] && echo 2000 || echo 20000)
      [ "$s" = py ] && n=$([ "$k" = 1 ] && echo 500 || echo 5000)
      out=$(call "$c" "$prefix" "$n" "$k")
      kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
      redis-cli -p "$port" FLUSHALL >/dev/null
      echo "$s $c $k $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["calls_per_s"], d["p50_ms"])')" >> "$results"
    done
  done
done
python3 - "$results" "$rounds" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    s, c, k, cps, p50 = line.split()
    rows.setdefault((s, c, int(k)), []).append((float(cps), float(p50)))
print(f"\nend to end over one Redis, medians of {sys.argv[2]} alternating rounds (arith.add)\n")
print("| server | client | p50 @1 | calls/s @256 | × the Rust pair @256 | × the Python 0.1.9 pair |")
print("|---|---|---|---|---|---|")
rust = statistics.median(x[0] for x in rows[("rust", "rust", 256)])
py = statistics.median(x[0] for x in rows[("py", "py", 256)])
for s, c in [("ts", "ts"), ("ts", "rust"), ("rust", "ts"), ("rust", "rust"), ("py", "py")]:
    p50 = statistics.median(x[1] for x in rows[(s, c, 1)])
    cps = statistics.median(x[0] for x in rows[(s, c, 256)])
    names = {"ts": "TypeScript (@clamator-rs)", "rust": "Rust", "py": "Python 0.1.9"}
    note = " (50 in flight)" if s == "py" else ""
    print(f"| {names[s]} | {names[c]} | {p50:.3f} ms | {cps:,.0f}{note} | {cps / rust:.2f}× | {cps / py:.1f}× |")
PY
