#!/usr/bin/env bash
# Whole-process throughput of `voqa-agent analyze` beside `tshark -q -z rtp,streams` on the same
# capture, in the same run. Prints packets/s of each and their ratio, and checks that both saw
# the same RTP packets.
#
# Usage: benches/compare_tshark.sh [CAPTURE] [RUNS]
#   CAPTURE defaults to /tmp/voqa-bench-10k.pcap, generated if missing (10,000 streams x 200
#   packets, about 460 MB). RUNS (default 5) voqa runs; the median is reported. tshark runs once.
set -euo pipefail
cd "$(dirname "$0")/.."
cap=${1:-/tmp/voqa-bench-10k.pcap}
runs=${2:-5}
command -v tshark >/dev/null || { echo "tshark not installed (apt-get install tshark)" >&2; exit 2; }
cargo build --release -q -p voqa-agent --bin voqa-agent --example gen-capture
if [ ! -f "$cap" ]; then
  ./target/release/examples/gen-capture "$cap" --streams 10000 --packets 200
fi
frames=$(./target/release/voqa-agent analyze --format json --quiet "$cap" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["files"][0]["packets"], sum(s["packets"] for s in d["streams"]), len(d["streams"]))')
read -r total rtp nstreams <<<"$frames"
cat "$cap" > /dev/null  # page cache warm for both tools
median_run() {  # median wall time of $runs runs of analyze with extra args "$@"
  local times=()
  for _ in $(seq "$runs"); do
    times+=("$( { /usr/bin/time -f "%e %U %S %M" ./target/release/voqa-agent analyze --format json --quiet "$@" "$cap" > /dev/null; } 2>&1 | tail -1)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" 'NR==int((n+1)/2)'
}
voqa1=$(median_run --threads 1)
voqa=$(median_run)
tsh=$( { /usr/bin/time -f "%e %U %S %M" tshark -q -z rtp,streams --enable-heuristic rtp_udp -r "$cap" > /tmp/voqa-tshark.out; } 2>&1 | tail -1)
tshark_pkts=$(awk '/0x[0-9A-Fa-f]{8}/ {for (i=1;i<=NF;i++) if ($i ~ /^0x/) {print $(i+2); break}}' /tmp/voqa-tshark.out | paste -sd+ | bc)
tshark_streams=$(grep -cE '0x[0-9A-Fa-f]{8}' /tmp/voqa-tshark.out)
python3 - "$total" "$rtp" "$nstreams" "$voqa" "$tsh" "$tshark_pkts" "$tshark_streams" "$voqa1" "$(nproc)" <<'PY'
import sys
total, rtp, nstreams = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
vw, vu, vs, vm = map(float, sys.argv[4].split())
v1w, v1u, v1s, v1m = map(float, sys.argv[8].split())
cores = int(sys.argv[9])
tw, tu, ts, tm = map(float, sys.argv[5].split())
tp, tsn = int(sys.argv[6]), int(sys.argv[7])
print(f"capture: {total} frames, {rtp} RTP packets in {nstreams} streams (tshark: {tp} packets in {tsn} streams)")
print(f"voqa-agent analyze --threads 1 : {v1w:6.2f} s wall ({v1u:.2f} user + {v1s:.2f} sys), {total/v1w/1e6:6.2f} M packets/s, max RSS {v1m/1024:.0f} MiB (median of runs)")
print(f"voqa-agent analyze ({cores} threads): {vw:6.2f} s wall ({vu:.2f} user + {vs:.2f} sys), {total/vw/1e6:6.2f} M packets/s, max RSS {vm/1024:.0f} MiB (median of runs)")
print(f"tshark -z rtp,streams        : {tw:6.2f} s wall ({tu:.2f} user + {ts:.2f} sys), {total/tw/1e6:6.3f} M packets/s, max RSS {tm/1024:.0f} MiB")
print(f"ratio (wall)                 : {tw/v1w:.1f}x with one thread, {tw/vw:.1f}x with {cores}")
PY
