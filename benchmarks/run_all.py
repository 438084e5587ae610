"""`make bench`: run every benchmark in turn, each in its own process, and list the JSON
each one wrote under runs/bench/.

    python benchmarks/run_all.py              # all of them (about 40 minutes on 2 cores)
    python benchmarks/run_all.py dates_accuracy gpt_lightning_overhead
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = ("dates_accuracy", "gpt_lightning_overhead", "gpt_speed", "gpt_precision", "grading_throughput",
              "rnn_lm_quality", "seq2seq_dates", "vae_digits", "gan_ring", "ddp_scaling", "gpu_check")


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names or BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py")])
        print(f"=== {name}: exit {code} after {time.perf_counter() - start:.0f} s ===", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
