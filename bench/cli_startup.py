#!/usr/bin/env python3
"""Start-up cost of the ESPnet-side CLIs, and what the deferred imports save.

Usage::

    tools/venv/bin/python bench/cli_startup.py [--runs 3]

Times fresh interpreters (best of ``--runs``) that import the inference CLI
(what gcft_train / gcft_inference pay before any work) as shipped, and the same
plus forcing the modules the CLIs defer (``g2p_en``,
``tacotron_cleaner.cleaners``: inflect and NLTK), which is what every start
paid before. Prints ``name: value`` lines.
"""

import argparse
import os
import subprocess
import sys
import time

AS_SHIPPED = "import espnet_gcft.bin.gcft_inference"
FORCED = AS_SHIPPED + "; import g2p_en, tacotron_cleaner.cleaners as c; g2p_en.G2p; c.english_cleaners"


def best_of(code: str, runs: int) -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    best_of(AS_SHIPPED, 1)  # warm the file cache
    shipped, forced = best_of(AS_SHIPPED, args.runs), best_of(FORCED, args.runs)
    print(f"start_s_deferred: {shipped:.2f}")
    print(f"start_s_all_imported: {forced:.2f}")
    print(f"start_saved_s: {forced - shipped:.2f}")
    print(f"start_ratio: {shipped / forced:.3f}")


if __name__ == "__main__":
    main()
