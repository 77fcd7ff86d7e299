#!/usr/bin/env bash
# Live-capture benchmark (root): two network namespaces joined by a veth pair; our sendmmsg
# blaster sends prepared RTP from one, `voqa-agent run` captures on the other. Reports, per case:
# packets sent and captured, kernel drops, the agent's CPU time per packet and CPU share of one
# core, and its RSS (ring included; the ring is block_size x block_count per worker).
#
# Usage: sudo benches/live_capture.sh            (all cases)
#        sudo benches/live_capture.sh STREAMS RATE SECONDS [WORKERS] [BLOCKS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
cargo build --release -q -p voqa-agent --bin voqa-agent --example blaster
A=voqa-bench-a-$$; B=voqa-bench-b-$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add vbench-a netns "$A" type veth peer name vbench-b netns "$B"
ip -n "$A" addr add 10.99.0.1/30 dev vbench-a
ip -n "$B" addr add 10.99.0.2/30 dev vbench-b
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set vbench-a up; ip -n "$B" link set vbench-b up
ticks=$(getconf CLK_TCK)

cpu_s() { awk -v t="$ticks" '{print ($14+$15)/t}' "/proc/$1/stat"; }

run_case() {
  local streams=$1 rate=$2 seconds=$3 workers=${4:-1} blocks=${5:-64}
  local dir; dir=$(mktemp -d)
  cat > "$dir/agent.toml" <<CFG
agent_id = "bench"
[capture]
interfaces = ["vbench-b"]
workers = $workers
block_count = $blocks
stats_interval_s = 1
[analysis]
interval_s = ${VOQA_BENCH_INTERVAL:-10}
[health]
heartbeat_interval_s = 1
[metrics]
listen = ""
CFG
  ip netns exec "$B" ./target/release/voqa-agent run --config "$dir/agent.toml" --sink "file:$dir/out.jsonl" 2>"$dir/agent.err" &
  local apid=$!
  sleep 1.5
  local c0; c0=$(cpu_s "$apid")
  local t0; t0=$(date +%s.%N)
  local sent; sent=$(ip netns exec "$A" ./target/release/examples/blaster 10.99.0.2 --streams "$streams" --rate "$rate" --seconds "$seconds")
  sleep 1.5
  local c1; c1=$(cpu_s "$apid")
  local t1; t1=$(date +%s.%N)
  local rss anon; rss=$(awk '/VmRSS/ {print $2}' "/proc/$apid/status"); anon=$(awk '/RssAnon/ {print $2}' "/proc/$apid/status")
  kill -TERM "$apid"; wait "$apid" || true
  python3 - "$dir/out.jsonl" "$sent" "$c0" "$c1" "$t0" "$t1" "$rss" "$anon" "$streams" "$rate" "$workers" "$blocks" <<'PY'
import json, sys, re
path, sent, c0, c1, t0, t1, rss, anon, streams, rate, workers, blocks = sys.argv[1:]
hb = None; pkts = 0; nstreams = 0
for line in open(path):
    r = json.loads(line)
    if r["type"] == "heartbeat": hb = r
    elif r["final"]: pkts += r["totals"]["packets"]; nstreams += 1
n_sent = int(re.search(r"sent (\d+)", sent).group(1))
drops = sum(w["kernel_drops"] for w in hb["workers"]) if hb else -1
kpk = sum(w["kernel_packets"] for w in hb["workers"]) if hb else -1
cpu = float(c1) - float(c0); wall = float(t1) - float(t0)
print(f"streams={streams} offered={rate or 'max'} pps workers={workers} ring={blocks} MiB/worker: sent {n_sent} ({sent.split('(')[-1].rstrip(')')}), "
      f"kernel {kpk} packets, {drops} drops, measured {pkts} packets in {nstreams} streams; "
      f"agent CPU {cpu:.2f} s over {wall:.1f} s = {100*cpu/wall:.1f}% of one core, {1e9*cpu/max(pkts,1):.0f} ns/packet; "
      f"RSS {int(rss)//1024} MiB ({int(anon)//1024} MiB anonymous)")
PY
  rm -rf "$dir"
}

if [ $# -ge 3 ]; then
  run_case "$@"
else
  run_case 2000 100000 10 1 64     # 1,000 G.711 calls: 2,000 streams at 50 packets/s
  run_case 2000 0 10 1 64          # as fast as the sender can
  run_case 10000 100000 10 1 64    # 10,000 concurrent streams
  run_case 100000 100000 10 1 64   # 100,000 concurrent streams
fi
