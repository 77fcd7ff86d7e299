#!/usr/bin/env bash
# Whole-process cost of `voqa-agent analyze --threads 1` (start to exit, JSON written to a file)
# on two captures shaped like real traffic, both with SIP signalling, and tshark on the same
# files in the same run:
#   10k: 5,000 concurrent calls  -> 10,000 streams, ~2.0 M frames (200 packets per stream)
#   50k: 25,000 concurrent calls -> 50,000 streams, ~2.1 M frames (39 packets per stream)
# Each call is a SIP dialog (INVITE/100/180/200/ACK, BYE/200, SDP offer and answer) and its two
# G.711 streams, found by SDP. Prints packets/s (wall and CPU), ns per packet, the ratio to
# tshark, and how the cost per packet grows from 10,000 to 50,000 streams (target: within 2x).
#
# Usage: benches/analyze_scale.sh [RUNS] [DIR]
#   RUNS (default 5) runs of analyze per file; the median (by wall time) is reported.
#   DIR (default /tmp) holds the captures (generated when missing, ~480 + ~490 MB).
#   VOQA_BIN=path uses that binary instead of building target/release/voqa-agent (A/B runs).
#   NO_TSHARK=1 skips tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
dir=${2:-/tmp}
cargo build --release -q -p voqa-agent --bin voqa-agent --example gen-capture
bin=${VOQA_BIN:-./target/release/voqa-agent}
small="$dir/voqa-bench-calls5k.pcap"
large="$dir/voqa-bench-calls25k.pcap"
[ -f "$small" ] || ./target/release/examples/gen-capture "$small" --calls 5000 --packets 200
[ -f "$large" ] || ./target/release/examples/gen-capture "$large" --calls 25000 --packets 39
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export VOQA_PSEUDONYM_KEY=bench # a fixed key: the JSON of two binaries can be compared

timed() { # OUT CMD... -> "wall user sys" in seconds, to the microsecond (/usr/bin/time rounds to
  # 10 ms, a twentieth of the 10k run); the command's stdout goes to OUT
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
# The output file is opened (truncating the last run's, tens of MB of page cache to free)
# before the clock starts: that is the benchmark's work, not the process's.
with open(out, "wb") as f:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=f, check=True)
    wall = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.6f} {after.ru_utime - before.ru_utime:.6f} {after.ru_stime - before.ru_stime:.6f}")
PY
}

measure() { # FILE -> "wall user sys" of the median run
  local cap=$1 times=()
  cat "$cap" > /dev/null # page cache warm
  for _ in $(seq "$runs"); do
    times+=("$(timed "$out/analyze.json" "$bin" analyze --threads 1 --format json --quiet "$cap")")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" 'NR==int((n+1)/2)'
}

results=()
for cap in "$small" "$large"; do
  t=$(measure "$cap")
  frames=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["files"][0]["packets"], len(d["streams"]), sum(1 for s in d["streams"] if s["detection"]=="sdp"), len(d["calls"]))' "$out/analyze.json")
  sha=$(sha256sum "$out/analyze.json" | cut -c1-16)
  if [ -z "${NO_TSHARK:-}" ] && command -v tshark > /dev/null; then
    tsh=$(timed "$out/tshark.txt" tshark -n -q -r "$cap" -z rtp,streams)
    tstreams=$(grep -cE '0x[0-9A-Fa-f]{8}' "$out/tshark.txt" || true)
  else
    tsh="0 0 0"
    tstreams=0
  fi
  results+=("$(basename "$cap") $frames $t $tsh $tstreams $sha")
done

python3 - "$runs" "${results[@]}" <<'PY'
import sys
runs = int(sys.argv[1])
rows = []
for line in sys.argv[2:]:
    f = line.split()
    name, frames, streams, sdp, calls = f[0], int(f[1]), int(f[2]), int(f[3]), int(f[4])
    w, u, s = map(float, f[5:8])
    tw, tu, ts = map(float, f[8:11])
    tstreams, sha = int(f[11]), f[12]
    cpu = u + s
    rows.append((frames, w, cpu))
    print(f"{name}: {frames} frames, {streams} streams ({sdp} found by SDP), {calls} calls; JSON sha256 {sha}")
    print(f"  voqa-agent analyze --threads 1: {w:.3f} s wall, {cpu:.3f} s CPU ({u:.3f} user + {s:.3f} sys), median of {runs}")
    print(f"    {frames / w / 1e6:.2f} M packets/s wall, {frames / cpu / 1e6:.2f} M packets/s of CPU; {w / frames * 1e9:.0f} ns wall, {cpu / frames * 1e9:.0f} ns CPU per packet")
    if tw > 0:
        print(f"  tshark -n -q -z rtp,streams: {tw:.2f} s wall, {tu + ts:.2f} s CPU, {frames / tw / 1e6:.3f} M packets/s ({tstreams} streams)")
        print(f"  ratio voqa / tshark: {tw / w:.0f}x wall, {(tu + ts) / cpu:.0f}x CPU")
if len(rows) == 2:
    (f1, w1, c1), (f2, w2, c2) = rows
    print(f"cost per packet, 50k vs 10k streams: {(w2 / f2) / (w1 / f1):.2f}x wall, {(c2 / f2) / (c1 / f1):.2f}x CPU (target <= 2x)")
PY
