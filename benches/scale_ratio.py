#!/usr/bin/env python3
"""Per-packet cost of `voqa-agent analyze --threads 1` on the 50k-stream file against the 10k one
(or any two captures), measured as a ratio per round: each round runs the 10k file and then the
50k file back to back, so a slow minute of a shared machine weighs on both sides of a ratio
rather than on one file's median. Prints, per binary, the medians and the median of the
per-round ratios (wall and CPU = user + sys), the fastest run of each file and their ratio
(interference from other tenants only adds time, so on a noisy VM the fastest runs are the
estimate closest to the machine's own speed), and the sorted per-round wall ratios (their
spread is the machine's noise).

Usage: benches/scale_ratio.py RUNS BIN[,BIN2...] [DIR [SMALL LARGE]]
  DIR (default /tmp) holds voqa-bench-calls5k.pcap and voqa-bench-calls25k.pcap, made by
  benches/analyze_scale.sh. Several binaries alternate within each round (A/B in the same minutes).
  SMALL and LARGE name two other captures in DIR to compare instead, e.g. the 50k file and one of
  50,000 calls of the same shape (100,000 streams: `gen-capture OUT --calls 50000 --packets 39`),
  where the same work twice over should cost the same per packet.
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
    names = sys.argv[4:6] if len(sys.argv) > 5 else ["voqa-bench-calls5k.pcap", "voqa-bench-calls25k.pcap"]
    small, large = (os.path.join(folder, n) for n in names)
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
            doc = json.load(o)
            return doc["files"][0]["packets"], len(doc["streams"])

    (fs, ns), (fl, nl) = frames(bins[0], small), frames(bins[0], large)  # also warms the page cache
    a, z = f"{ns // 1000}k", f"{nl // 1000}k"  # the files by their streams
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

        def fastest(i):
            return min(x[i] for x in v)

        # The fastest run of each file is the estimate least touched by other tenants'
        # interference, which only ever adds time: its ratio is printed beside the medians.
        low_wall = (fastest(2) / fl) / (fastest(0) / fs)
        low_cpu = (fastest(3) / fl) / (fastest(1) / fs)

        print(f"{b}\n  {a} {med(0) * 1000:.1f} ms wall, {med(1) * 1000:.1f} ms CPU; "
              f"{z} {med(2) * 1000:.1f} ms wall, {med(3) * 1000:.1f} ms CPU\n"
              f"  per packet {z} vs {a}, median of per-round ratios: {med(4):.2f}x wall, "
              f"{med(5):.2f}x CPU (target <= 2x)\n"
              f"  fastest runs: {a} {fastest(0) * 1000:.1f} ms wall, {fastest(1) * 1000:.1f} ms CPU; "
              f"{z} {fastest(2) * 1000:.1f} ms wall, {fastest(3) * 1000:.1f} ms CPU; "
              f"per packet {low_wall:.2f}x wall, {low_cpu:.2f}x CPU\n"
              f"  per-round wall ratios: {sorted(round(x[4], 2) for x in v)}")


if __name__ == "__main__":
    main()
