#!/usr/bin/env bash
# Peak memory of the collector evaluating SLAs on the report-based path (issue 10 item 10).
#
# Fills a SQLite store with REPORTS stream reports (default 200,000: 50,000 calls of two streams,
# an interval and a final window each, per-packet histograms as agents ship them) for customer
# `acme`, narrowed to subnets, whose scope is registered only when the collector starts (after
# its November began), so November is evaluated from the stream reports. Then starts the real
# `voqa-collector serve`, fires REQUESTS (default 20) concurrent GETs of acme's November SLA
# (over 20 customer tokens) and prints the collector's peak RSS (VmHWM of /proc/PID/status)
# before and after. Target: under 256 MiB with all 20 requests evaluated.
#
# Two rounds, each with a fresh collector process on the same store:
#   1. sla_max_concurrent = sla_max_concurrent_per_token = 20: every request is evaluated;
#   2. the default limits: requests beyond them are answered 429 with Retry-After.
#
# Usage: benches/sla_memory.sh [REPORTS] [REQUESTS]
#   PROFILE=release builds optimised (default: the dev profile, already built by the tests).
#   KEEP=DIR keeps (and reuses, if present) the filled store in DIR.
#   ROUNDS=1 or ROUNDS=2 runs that round only.
#   VOQA_BIN=PATH runs that collector binary instead (A/B: a build of the former code).
set -euo pipefail
cd "$(dirname "$0")/.."
reports=${1:-200000}
requests=${2:-20}
profile=${PROFILE:-dev}
out=$([ "$profile" = dev ] && echo debug || echo "$profile")
cargo build --profile "$profile" -q -p voqa-collector --bin voqa-collector --example sla-memory
bin=${VOQA_BIN:-target/$out/voqa-collector}
helper=target/$out/examples/sla-memory

tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
dir=${KEEP:-$tmp}
mkdir -p "$dir"
db="$dir/sla-memory-$reports.db"
[ -f "$db" ] || "$helper" fill "sqlite:$db" "$reports"
echo "store: $(du -sh "$db" | cut -f1) ($reports reports)"

hwm() { awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$1/status"; }

round() { # LABEL EXTRA_CONFIG
  cat > "$tmp/collector.toml" <<TOML
listen = "127.0.0.1:0"
database = "sqlite:$db"
retention_days = 36500
$2
[[customers]]
id = "acme"
name = "ACME media peers"
agents = ["fra-media-1"]
subnets = ["203.0.113.0/24"]
[customers.commitments]
mos_min = 4.0
calls_meeting_pct = 95.0
loss_max_pct = 1.0
jitter_p95_max_ms = 30.0
uptime_min_pct = 99.95
TOML
  "$bin" --config "$tmp/collector.toml" serve 2> "$tmp/collector.log" &
  pid=$!
  local url=
  for _ in $(seq 600); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/collector.log")
    [ -n "$url" ] && break
    kill -0 "$pid" || { cat "$tmp/collector.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "collector did not start"; cat "$tmp/collector.log"; exit 1; }
  local idle
  idle=$(hwm "$pid")
  "$helper" fire "$url" "$requests" 20
  echo "$1: collector peak RSS $(hwm "$pid") (after start: $idle)"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

for r in ${ROUNDS:-1 2}; do
  case $r in
    1) round "limits 20 / 20 per token" $'sla_max_concurrent = 20\nsla_max_concurrent_per_token = 20' ;;
    2) round "default limits" "" ;;
  esac
done
