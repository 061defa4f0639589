#!/usr/bin/env bash
# Before/after benchmark of the working tree against a base revision, in alternating rounds on
# one private redis-server (this machine is noisy: only alternating rounds compare).
#   memory: clamator-bench --memory-only (in-process, 64 in flight)
#   redis:  clamator-interop-server + `clamator bench` arith.add @1 (p50) and @256 (calls/s)
# Usage: bash scripts/ab.sh <base-rev> [rounds]     (default rounds: 3)
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: scripts/ab.sh <base-rev> [rounds]}
rounds=${2:-3}
root=$PWD
work=$root/target/ab
mkdir -p "$work"

echo "== building base ($base_rev) and current (release)" >&2
if [ ! -d "$work/base" ]; then
  git worktree add -f "$work/base" "$base_rev" >/dev/null
else
  git -C "$work/base" checkout -q --detach "$base_rev"
fi
(cd "$work/base" && CARGO_TARGET_DIR="$work/base-target" cargo build --release -q -p clamator-interop -p clamator-cli -p clamator-bench)
cargo build --release -q -p clamator-interop -p clamator-cli -p clamator-bench
declare -A bin=([base]="$work/base-target/release" [new]="$root/target/release")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null &
redis_pid=$!
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; kill "$redis_pid" 2>/dev/null; }
trap cleanup EXIT
url="redis://127.0.0.1:$port"
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
results=$work/results.txt
: > "$results"
for r in $(seq 1 "$rounds"); do
  for side in base new; do
    b=${bin[$side]}
    mem=$("$b/clamator-bench" --memory-only | awk '/^throughput:/ {print $2}')
    prefix="ab$side$r"
    "$b/clamator-interop-server" --redis-url "$url" --prefix "$prefix" > "$work/server.out" 2>/dev/null &
    server_pid=$!
    until grep -q READY "$work/server.out" 2>/dev/null; do sleep 0.05; done
    one=$("$b/clamator" --redis-url "$url" --prefix "$prefix" bench --method arith.add --params '{"a":1,"b":2}' --calls 3000 --concurrency 1 --json)
    many=$("$b/clamator" --redis-url "$url" --prefix "$prefix" bench --method arith.add --params '{"a":1,"b":2}' --calls 30000 --concurrency 256 --json)
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    redis-cli -p "$port" FLUSHALL >/dev/null
    p50=$(echo "$one" | field p50_ms)
    cps=$(echo "$many" | field calls_per_s)
    echo "$side $r $mem $p50 $cps" >> "$results"
    printf '%s round %s: memory %.0f calls/s, redis @1 p50 %.3f ms, redis @256 %.0f calls/s\n' "$side" "$r" "$mem" "$p50" "$cps" >&2
  done
done

python3 - "$results" "$base_rev" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def col(side, i): return [float(r[i]) for r in rows if r[0] == side]
print(f"| metric (median of {len(col('new', 2))} alternating rounds) | base {sys.argv[2]} | current | current/base |")
print("|---|---|---|---|")
for name, i, better in [("memory calls/s @64", 2, "higher"), ("redis p50 ms @1", 3, "lower"), ("redis calls/s @256", 4, "higher")]:
    b, n = statistics.median(col("base", i)), statistics.median(col("new", i))
    print(f"| {name} ({better} is better) | {b:.3f} | {n:.3f} | {n/b:.2f} |")
print()
print("rounds:", "; ".join(" ".join(r) for r in rows))
PY
