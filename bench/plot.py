#!/usr/bin/env python3
"""bench/plot.py FRESHNESS.json OUT.png - the freshness distribution (histogram and CDF)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

d = json.load(open(sys.argv[1]))
xs = sorted(d["fresh_samples_ms"])
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
a.hist(xs, bins=100)
a.set_xlabel("command 2xx -> visible in GET (ms)")
a.set_ylabel("commands")
a.set_title("freshness at %.0f POST/s for %.0f s" % (d["rate"], d["seconds"]))
n = len(xs)
b.plot(xs, [(i + 1) / n for i in range(n)])
b.set_xscale("log")
b.set_xlabel("ms (log)")
b.set_ylabel("fraction visible")
for p, c in ((50, "g"), (99, "orange"), (99.9, "r")):
    v = d["fresh_p%s_ms" % str(p).replace(".", "")] if p != 99.9 else d["fresh_p999_ms"]
    if v is not None:
        b.axvline(v, color=c, linestyle="--", label="p%s %.1f ms" % (p, v))
b.legend()
b.set_title("CDF")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
