#!/usr/bin/env python3
"""Per-packet cost of `voqa-agent analyze --threads 1` on the 50k-stream file against the 10k one,
measured as a ratio per round: each round runs the 10k file and then the 50k file back to back,
so a slow minute of a shared machine weighs on both sides of a ratio rather than on one file's
median. Prints, per binary, the medians and the median of the per-round ratios (wall and CPU =
user + sys), and the sorted per-round wall ratios (their spread is the machine's noise).

Usage: benches/scale_ratio.py RUNS BIN[,BIN2...] [DIR]
  DIR (default /tmp) holds voqa-bench-calls5k.pcap and voqa-bench-calls25k.pcap, made by
  benches/analyze_scale.sh. Several binaries alternate within each round (A/B in the same minutes).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = int(sys.argv[1])
    bins = sys.argv[2].split(",")
    folder = sys.argv[3] if len(sys.argv) > 3 else "/tmp"
    small = os.path.join(folder, "voqa-bench-calls5k.pcap")
    large = os.path.join(folder, "voqa-bench-calls25k.pcap")
    for f in (small, large):
        if not os.path.isfile(f):
            sys.exit(f"{f} missing: run benches/analyze_scale.sh first")
    env = dict(os.environ, VOQA_PSEUDONYM_KEY="bench")
    out = os.path.join(tempfile.mkdtemp(), "analyze.json")

    def run(binary, capture):
        """(wall s, CPU s) of one whole run, JSON written to a file."""
        with open(out, "wb") as o:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([binary, "analyze", "--threads", "1", "--format", "json", "-q", capture],
                           stdout=o, env=env, check=True)
            wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def frames(binary, capture):
        run(binary, capture)
        with open(out) as o:
            return json.load(o)["files"][0]["packets"]

    fs, fl = frames(bins[0], small), frames(bins[0], large)  # also warms the page cache
    rows = {b: [] for b in bins}
    for _ in range(runs):
        for b in bins:
            ws, cs = run(b, small)
            wl, cl = run(b, large)
            rows[b].append((ws, cs, wl, cl, (wl / fl) / (ws / fs), (cl / fl) / (cs / fs)))
    for b in bins:
        v = rows[b]

        def med(i):
            return statistics.median(x[i] for x in v)

        print(f"{b}\n  10k {med(0) * 1000:.1f} ms wall, {med(1) * 1000:.1f} ms CPU; "
              f"50k {med(2) * 1000:.1f} ms wall, {med(3) * 1000:.1f} ms CPU\n"
              f"  per packet 50k vs 10k, median of per-round ratios: {med(4):.2f}x wall, "
              f"{med(5):.2f}x CPU (target <= 2x)\n"
              f"  per-round wall ratios: {sorted(round(x[4], 2) for x in v)}")


if __name__ == "__main__":
    main()
