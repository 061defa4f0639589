#!/usr/bin/env bash
# Scaling out: the benchmark rows of one Redis node, a 3-master Redis Cluster, and a master with
# a replica under min_replicas, in alternating rounds, Rust and the released Python 0.1.9 side
# by side (median of the rounds).
#   one service:      Rust client -> Rust server arith.add @1 (p50) and @256 (calls/s);
#                     Python client -> Python server @50 (calls/s; 0.1.9 on a RedisCluster)
#   spread services:  3 prefixes whose command streams are on 3 different masters (on the
#                     single node: the same 3 prefixes), a Rust server and a bench @128 each,
#                     at once: the sum of calls/s
#   min_replicas:     master + replica, Rust @256 without and with --min-replicas 1 (both ends)
# Usage: bash scripts/scaling-out.sh [rounds]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release -q -p clamator-cli -p clamator-interop
bash scripts/setup-python.sh >/dev/null
bin=$PWD/target/release
py=$PWD/.venv/bin/python
work=$PWD/target/scaling-out
rm -rf "$work"; mkdir -p "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
redis() { # port [args...]
  local p=$1; shift
  mkdir -p "$work/$p"
  redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/$p" "$@" >/dev/null &
  local pid=$!; pids+=("$pid")
  until redis-cli -p "$p" ping >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "redis-server on port $p did not start" >&2; exit 1; }
    sleep 0.05
  done
}

single=$(free_port); redis "$single"
cports=(); for _ in 1 2 3; do p=$(free_port); cports+=("$p"); redis "$p" --cluster-enabled yes --cluster-port "$(free_port)" --cluster-config-file nodes.conf; done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cports[@]}") --cluster-yes >/dev/null
until redis-cli -p "${cports[0]}" cluster info | grep -q 'cluster_state:ok'; do sleep 0.1; done
master=$(free_port); redis "$master"
replica=$(free_port); redis "$replica" --replicaof 127.0.0.1 "$master"
until redis-cli -p "$replica" info replication | grep -q 'master_link_status:up'; do sleep 0.1; done
seeds=$(printf 'redis://127.0.0.1:%s,' "${cports[@]}"); seeds=${seeds%,}

# three prefixes whose arith streams are on three different masters
spread=$(python3 - "${cports[0]}" <<'PY'
import subprocess, sys
port = sys.argv[1]
cli = lambda *a: subprocess.run(["redis-cli", "-p", port, *a], capture_output=True, text=True).stdout
masters = []
for line in cli("CLUSTER", "NODES").splitlines():
    f = line.split()
    if "master" in f[2]:
        masters.append((f[0], [tuple(map(int, r.split("-"))) if "-" in r else (int(r), int(r)) for r in f[8:]]))
owner = lambda slot: next(m for m, rs in masters if any(a <= slot <= b for a, b in rs))
chosen = {}
for i in range(1000):
    p = f"so{i}"
    m = owner(int(cli("CLUSTER", "KEYSLOT", f"{p}:cmds:arith")))
    chosen.setdefault(m, p)
    if len(chosen) == 3:
        break
print(" ".join(chosen.values()))
PY
)

field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
server_pids=()
start() { # lang prefix connection-args...
  local lang=$1 prefix=$2; shift 2
  local out="$work/server-$prefix.out"
  if [ "$lang" = rust ]; then "$bin/clamator-interop-server" --prefix "$prefix" "$@" > "$out" 2>/dev/null &
  else (cd interop/py && exec "$py" server.py --prefix "$prefix" --instance-id bench "$@") > "$out" 2>/dev/null &
  fi
  server_pids+=($!)
  until grep -q READY "$out" 2>/dev/null; do sleep 0.05; done
}
stop_all() { for p in "${server_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done; server_pids=(); }
rust_bench() { # calls concurrency prefix field connection-args...
  local calls=$1 conc=$2 prefix=$3 f=$4; shift 4
  "$bin/clamator" "$@" --prefix "$prefix" bench --method arith.add --params '{"a":1,"b":2}' --calls "$calls" --concurrency "$conc" --json | field "$f"
}

results=$work/results.txt; : > "$results"
for r in $(seq 1 "$rounds"); do
  for mode in single cluster; do
    if [ $mode = single ]; then conn=(--redis-url "redis://127.0.0.1:$single"); pyconn=(--redis-url "redis://127.0.0.1:$single")
    else conn=(--redis-cluster "$seeds"); pyconn=(--redis-cluster "$seeds"); fi
    start rust "r$mode$r" "${conn[@]}"
    one=$(rust_bench 3000 1 "r$mode$r" p50_ms "${conn[@]}")
    many=$(rust_bench 30000 256 "r$mode$r" calls_per_s "${conn[@]}")
    stop_all
    start py "p$mode$r" "${pyconn[@]}"
    pyc=$(cd interop/py && "$py" bench.py redis "${pyconn[@]}" --prefix "p$mode$r" --method arith.add --params '{"a":1,"b":2}' --calls 3000 --concurrency 50 | field calls_per_s)
    stop_all
    for p in $spread; do start rust "$p" "${conn[@]}"; done
    benches=()
    for p in $spread; do rust_bench 20000 128 "$p" calls_per_s "${conn[@]}" > "$work/spread-$p" & benches+=($!); done
    wait "${benches[@]}"
    sum=$(cat "$work"/spread-* | python3 -c 'import sys; print(sum(float(x) for x in sys.stdin))')
    rm -f "$work"/spread-*
    stop_all
    if [ $mode = single ]; then redis-cli -p "$single" FLUSHALL >/dev/null
    else for p in "${cports[@]}"; do redis-cli -p "$p" FLUSHALL >/dev/null; done; fi
    echo "$mode $r $one $many $pyc $sum" >> "$results"
    printf '%s round %s: rust @1 p50 %.3f ms, @256 %.0f calls/s, python @50 %.0f calls/s, 3 spread services %.0f calls/s\n' "$mode" "$r" "$one" "$many" "$pyc" "$sum" >&2
  done
  conn=(--redis-url "redis://127.0.0.1:$master")
  start rust "m0$r" "${conn[@]}"
  plain=$(rust_bench 30000 256 "m0$r" calls_per_s "${conn[@]}")
  stop_all
  start rust "m1$r" "${conn[@]}" --min-replicas 1
  durable=$(rust_bench 30000 256 "m1$r" calls_per_s "${conn[@]}" --min-replicas 1)
  stop_all
  redis-cli -p "$master" FLUSHALL >/dev/null
  echo "replicas $r $plain $durable" >> "$results"
  printf 'master+replica round %s: rust @256 %.0f calls/s, with min_replicas 1 %.0f calls/s\n' "$r" "$plain" "$durable" >&2
done

python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda mode, i: statistics.median(float(r[i]) for r in rows if r[0] == mode)
print("| deployment | Rust→Rust p50 @1 | Rust→Rust calls/s @256 | Python→Python calls/s @50 | 3 services on 3 masters, calls/s (sum) |")
print("|---|---|---|---|---|")
for mode, name in (("single", "one node"), ("cluster", "Redis Cluster, 3 masters")):
    print(f"| {name} | {med(mode, 2):.3f} ms | {med(mode, 3):,.0f} | {med(mode, 4):,.0f} | {med(mode, 5):,.0f} |")
plain, durable = med("replicas", 2), med("replicas", 3)
print()
print(f"master + 1 replica, Rust→Rust @256: {plain:,.0f} calls/s; with min_replicas 1 on both ends {durable:,.0f} calls/s ({durable / plain:.2f}×)")
PY
