#!/usr/bin/env bash
# Chaos run of the Redis transport, or with --nats of the NATS JetStream transport (see
# crates/clamator-interop/src/bin/chaos.rs): a private broker (redis-server with AOF, or
# nats-server -js with file storage), three server processes, a load of calls, a server
# SIGKILLed or SIGTERMed and restarted every few seconds, one SIGSTOP longer than the claim
# idle / ack wait, broker SIGKILL + restart (NATS: twice, and its consumer deleted once).
# Prints a table and exits 1 unless no call is lost, no request that never ran is
# dead-lettered, every duplicate is explained and nothing is left or leaked.
#   bash scripts/chaos.sh [--nats]              # 120 s of load, release build
#   bash scripts/chaos.sh [--nats] --smoke      # 30 s of load, debug build (what CI runs)
#   bash scripts/chaos.sh [--nats] --repeat 10 --duration-s 45
#                                               # 10 runs in a row, one line each, then a summary
#                                               # (exits 1 unless every run passed)
# Other flags: --duration-s N --in-flight N --claim-idle-ms N --kill-every-ms N --json FILE
# CLAMATOR_TEST_SERVER=valkey runs it on Valkey (bash scripts/setup-valkey.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
repeat=
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) profile=debug; args+=("$1") ;;
    --repeat) repeat=${2:?--repeat needs a count}; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ "$profile" = release ]; then
  cargo build --quiet --release -p clamator-interop --bins
else
  cargo build --quiet -p clamator-interop --bins
fi
bin=target/$profile/clamator-chaos
if [ -z "$repeat" ]; then
  exec "$bin" "${args[@]}"
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0
echo "| run | calls | OK | lost | failed | executed twice or more | dead letters | left stored / pending | pass |"
echo "|---|---|---|---|---|---|---|---|---|"
for i in $(seq 1 "$repeat"); do
  "$bin" "${args[@]}" --json "$dir/run.json" >"$dir/run.out" 2>"$dir/run.err" || true
  if [ ! -s "$dir/run.json" ]; then
    echo "| $i | run did not finish: $(tail -n 3 "$dir/run.err" | tr '\n' ' ') | | | | | | | no |"
    continue
  fi
  line=$(python3 - "$dir/run.json" "$i" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
failed = sum(r["failed"].values()) if isinstance(r["failed"], dict) else r["failed"]
ex = r["executions"]
twice = ex.get("2", 0) + ex.get(">2", 0)
left = r["left"]
stored = sum(d.get("messages", d.get("length", 0)) for d in left if "stream" in d and "_cmds_" in d.get("stream", "") or ":cmds:" in d.get("key", ""))
pending = sum(d.get("ack_pending", d.get("pending", 0)) for d in left)
print(f"| {sys.argv[2]} | {r['calls']} | {r['ok']} | {r['lost']} | {failed} | {twice} | {r['dead_letters']} | {stored} / {pending} | {'yes' if r['pass'] else 'NO'} |")
PY
)
  echo "$line"
  if grep -q "| yes |$" <<<"$line"; then passed=$((passed + 1)); else cp "$dir/run.err" "target/chaos-failed-run-$i.err" 2>/dev/null || true; fi
  rm -f "$dir/run.json"
done
echo
echo "$passed of $repeat runs passed"
[ "$passed" = "$repeat" ]
