#!/usr/bin/env bash
# What the operator tools cost a shared production Redis (issue 29): a private redis-server with
# 200 clamator services (streams, groups, a consumer each) and 1,000,000 unrelated keys
# (DEBUG POPULATE), then
#   - an idle `clamator dashboard`: Redis CPU (% of one core) and commands/s over 120 s, which
#     include two of its keyspace walks (every 60 s, --discover-every),
#   - `clamator inspect`: wall time,
#   - 1 and then 200 viewers of one service page (its event stream): commands/s.
# A benchmark, not a test: it prints a table and exits 0.
#   bash scripts/ops-cost.sh [--keys N] [--services N] [--seconds N] [--idle-seconds N] [--viewers N]
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=1000000
SERVICES=200
SECONDS_PER=20
IDLE_SECONDS=120 # two of the dashboard's keyspace walks (every 60 s) fall in this window
VIEWERS=200
while [ $# -gt 0 ]; do
  case "$1" in
    --keys) KEYS=$2; shift 2 ;;
    --services) SERVICES=$2; shift 2 ;;
    --seconds) SECONDS_PER=$2; shift 2 ;;
    --idle-seconds) IDLE_SECONDS=$2; shift 2 ;;
    --viewers) VIEWERS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cargo build --quiet --release -p clamator-cli
CLAMATOR=target/release/clamator

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
redis-server --port "$PORT" --save '' --appendonly no --dir "$DIR" --enable-debug-command yes \
  --daemonize yes --logfile "$DIR/redis.log"
R() { redis-cli -p "$PORT" "$@"; }
for _ in $(seq 50); do R ping >/dev/null 2>&1 && break; sleep 0.1; done
URL="redis://127.0.0.1:$PORT"

echo "setting up: $KEYS unrelated keys, $SERVICES services (prefix ops)"
R DEBUG POPULATE "$KEYS" unrelated >/dev/null
for i in $(seq 0 $((SERVICES - 1))); do
  echo "XGROUP CREATE ops:cmds:svc$i svc$i \$ MKSTREAM"
  echo "XADD ops:cmds:svc$i * type rpc envelope {}"
  echo "XREADGROUP GROUP svc$i svc$i:server-1 COUNT 1 STREAMS ops:cmds:svc$i >"
  echo "XADD ops:replies:client$((i % 20)) * envelope {}"
done | R >/dev/null
echo "keys: $(R DBSIZE)"

cpu() { R INFO cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.4f", s}'; }
cmds() { R INFO stats | awk -F: '/^total_commands_processed:/ {print $2+0}'; }
scans() { R INFO commandstats | awk -F'[=,:]' '/^cmdstat_scan:/ {print $3+0; f=1} END {if (!f) print 0}'; }
# prints "<% of a core> <commands/s> <SCANs/s>" over $1 seconds, less the measuring itself
measure() {
  local secs=$1 c0 n0 s0 c1 n1 s1
  c0=$(cpu); n0=$(cmds); s0=$(scans)
  sleep "$secs"
  c1=$(cpu); n1=$(cmds); s1=$(scans)
  python3 -c "print(f'{($c1-$c0)*100/$secs:.2f} {($n1-$n0-6)/$secs:.0f} {($s1-$s0)/$secs:.1f}')"
}

read -r idle_cpu idle_cmds _ < <(measure "$SECONDS_PER")
echo "Redis alone: ${idle_cpu}% of a core, ${idle_cmds} commands/s"

DPORT=$(free_port)
"$CLAMATOR" --redis-url "$URL" --prefix ops dashboard --listen "127.0.0.1:$DPORT" \
  >"$DIR/dashboard.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -s "http://127.0.0.1:$DPORT/api/overview" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 5 # past the first discovery
read -r dash_cpu dash_cmds dash_scans < <(measure "$IDLE_SECONDS")
listed=$(curl -s "http://127.0.0.1:$DPORT/api/overview" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')
echo "idle dashboard over ${IDLE_SECONDS} s: ${dash_cpu}% of a core, ${dash_cmds} commands/s of which ${dash_scans} SCAN/s ($listed services listed)"

start=$(date +%s.%N)
"$CLAMATOR" --redis-url "$URL" --prefix ops inspect >/dev/null
end=$(date +%s.%N)
inspect_s=$(python3 -c "print(f'{$end-$start:.2f}')")
echo "clamator inspect: ${inspect_s} s"

viewers() {
  local n=$1 pids=()
  for _ in $(seq "$n"); do
    curl -s -N "http://127.0.0.1:$DPORT/api/services/svc0/events" >/dev/null 2>&1 &
    pids+=($!)
  done
  sleep 3
  measure "$SECONDS_PER"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
# commands/s without the keyspace walks (a walk may fall in one window and not the other)
read -r one_cpu one_cmds one_scans < <(viewers 1)
one=$(python3 -c "print(round($one_cmds - $one_scans))")
echo "1 viewer of a service page: ${one_cpu}% of a core, ${one} commands/s besides SCAN"
read -r many_cpu many_cmds many_scans < <(viewers "$VIEWERS")
many=$(python3 -c "print(round($many_cmds - $many_scans))")
echo "$VIEWERS viewers of that page: ${many_cpu}% of a core, ${many} commands/s besides SCAN"

python3 - "$KEYS" "$SERVICES" "$VIEWERS" "$dash_cpu" "$dash_cmds" "$inspect_s" "$one" "$many" "$idle_cpu" "$dash_scans" "$IDLE_SECONDS" <<'EOF'
import sys
keys, services, viewers, dash_cpu, dash_cmds, inspect_s, one, many, idle, scans, secs = sys.argv[1:]
ratio = float(many) / max(float(one), 1.0)
print()
print(f"{services} services, {int(keys):,} unrelated keys, one private redis-server")
print()
print("| measure | value | target |")
print("|---|---|---|")
print(f"| Redis CPU of an idle dashboard, over {secs} s (keyspace walks included) | {float(dash_cpu) - float(idle):.2f}% of a core (Redis alone: {idle}%) | ≤ 2% |")
print(f"| commands/s of an idle dashboard | {dash_cmds} (SCAN: {scans}/s) | |")
print(f"| `clamator inspect` wall time | {inspect_s} s | ≤ 1 s |")
print(f"| commands/s with 1 / {viewers} viewers of one service page (SCAN apart) | {one} / {many} ({ratio:.2f}×) | ≤ 1.2× |")
EOF
