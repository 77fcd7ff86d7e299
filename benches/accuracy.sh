#!/usr/bin/env bash
# Largest difference between `voqa-agent analyze` and the ground truth of every shared sample
# (../shared/samples or $VOQA_SAMPLES_DIR), per field, over all streams. Counts are checked
# exactly by tests/samples.rs; this prints how close the measured values are.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${VOQA_SAMPLES_DIR:-../shared/samples}
cargo build --release -q -p voqa-agent --bin voqa-agent
python3 - "$dir" <<'PY'
import glob, json, os, subprocess, sys
d = sys.argv[1]; worst = {}; n = 0
for t in sorted(glob.glob(os.path.join(d, "*.truth.json"))):
    truth = json.load(open(t))
    out = subprocess.run(["./target/release/voqa-agent", "analyze", "--format", "json", "--no-pseudonymize",
                          os.path.join(d, truth["file"])], capture_output=True, text=True, check=True).stdout
    got = json.loads(out)["streams"]
    for w in truth["streams"]:
        g = next(s for s in got if s["src"] == w["src"] and s["dst"] == w["dst"] and s["ssrc"] == w["ssrc"])
        n += 1
        for k in ["packets", "expected", "lost", "duplicates", "reordered"]:
            worst[k] = max(worst.get(k, 0), abs(g[k] - w[k]))
        for k in ["jitter_ms", "max_jitter_ms", "mean_jitter_ms", "max_delta_ms"]:
            worst[k] = max(worst.get(k, 0), abs(g[k] - w[k]))
        rq = w["reference_quality"]
        for k in ["jb_discarded", "effective_loss_pct", "burst_ratio", "delay_ms", "r_factor", "mos"]:
            worst[k] = max(worst.get(k, 0), abs(g[k] - rq[k]))
        if rq["rtt_ms"] is not None:
            worst["rtt_ms"] = max(worst.get("rtt_ms", 0), abs(g["rtt_ms"] - rq["rtt_ms"]))
print(f"{n} streams; largest |voqa - truth| per field:")
for k, v in worst.items():
    print(f"  {k:20} {v:.6f}")
PY
