"""Cache hit latency: a repeated `lm(prompt)` answered from the memory tier.

usage: _measure_cache.py PORT   (prints {"hit_us": ...})
"""

from __future__ import annotations

import json
import sys
import time

import tgispy as dspy


def main() -> None:
    port = int(sys.argv[1])
    lm = dspy.HFClientTGI(model="canned/model", port=port, url="http://127.0.0.1", cache=True)
    lm("What is the capital of France?")  # the one miss
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        lm("What is the capital of France?")
    hit_us = (time.perf_counter() - start) / n * 1e6
    assert lm.history[-1]["cached"] is True
    print(json.dumps({"hit_us": hit_us}))


if __name__ == "__main__":
    main()
