"""Time exact Shapley explanations of the shipped champion for 1 and 100 candidates.

Writes experiments/results/explain_timing.md. Run with OMP_NUM_THREADS=1:

    python experiments/explain_timing.py [--model-dir models/champion]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from poreml.design.search_space import SearchSpace
from poreml.surrogates.explain import BACKGROUND_SIZE, explain
from poreml.tracking.artifacts import load_folder

OUT = Path("experiments/results/explain_timing.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", default="models/champion")
    parser.add_argument("--sizes", default="1,100")
    args = parser.parse_args()
    artifact = load_folder(args.model_dir)
    designs = SearchSpace.contract_box().sample(100, 123)
    t0 = time.perf_counter()
    explain(artifact.surrogate, designs.iloc[:1])  # first call: shap's numba kernels compile
    first = time.perf_counter() - t0
    rows = [f"| first call in a process (1 candidate, includes JIT) | {first:.1f} |"]
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        result = explain(artifact.surrogate, designs.iloc[:n])
        seconds = time.perf_counter() - t0
        worst = float(result.additivity_error().max())
        rows.append(f"| {n} candidate(s), warm | {seconds:.1f} (worst additivity {worst:.1e}) |")
    text = "\n".join(
        [
            "# Explanation timing",
            "",
            f"Model: {args.model_dir} ({type(artifact.surrogate).__name__}, version "
            f"{artifact.metadata.version}); exact Shapley values, background n={BACKGROUND_SIZE} "
            f"(2**9 x {BACKGROUND_SIZE} model rows per candidate); {platform.machine()}, "
            "OMP_NUM_THREADS=1, on a shared 2-core machine.",
            "",
            "| case | seconds |",
            "| --- | ---: |",
            *rows,
            "",
        ]
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
