"""The GPU path against its ceiling: for every main method, the model-only training rate (one batch already
on the device, stepped again and again) and the runner's end-to-end rate (`bench run`: sampler, loader,
steps), their ratio (at least 0.9 on a GPU), then the default grid on the device with each method's
prediction rate. `--compile MODE` also times the model under torch.compile and says after how many steps
its compile time is paid back. `--dry` does all of it on the CPU at tiny sizes in seconds, to show it works.

    python scripts/gpu_check.py --out /tmp/gpu_check                 # on a GPU machine: paper recipe
    python scripts/gpu_check.py --dry --out /tmp/gpu_dry             # anywhere: tiny, CPU
Run from the repository root (scripts/gpu_check.sh does, with the environment it needs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_timing import Recipe, model_rates

from bench.__main__ import main as bench
from bench.method import METHODS

PAPER = Recipe()
DRY = Recipe(preset="quick", image_size=32, pairs=4)


def end_to_end_rate(name: str, recipe: Recipe, device: str, out: Path, *, steps: int, scale: float) -> float:
    """Training images/s of `bench run` over the second of two epochs of ``steps`` steps (the first warms
    up), as log.csv records it: the sampler, the device loader and the steps, without validation."""
    folder = out / "end_to_end" / name
    argv = ["run", "--preset", recipe.preset, "--methods", name, "--train", "synth-ff", "--test", "synth-ff",
            "--no-controls", "--no-progress", "--device", device, "--out", str(folder),
            "--set", f"data.image_size={recipe.image_size}", "--set", f"data.synthetic_scale={scale}",
            "--set", f"train.batch_size={recipe.pairs}", "--set", "train.epochs=2",
            "--set", f"train.steps_per_epoch={steps}", "--set", "train.selection=last",
            "--set", f"train.channels_last={str(recipe.channels_last).lower()}",
            "--set", f"train.precision={'bf16' if recipe.bf16 and device != 'cpu' else 'fp32'}"]
    if recipe.backbone:
        argv += ["--set", f"method.backbone={recipe.backbone}"]
    if bench(argv) != 0:
        raise SystemExit(f"bench run failed for {name}; see {folder}")
    (log,) = folder.glob("runs/*/log.csv")
    return float(pd.read_csv(log)["images_per_s"].iloc[-1])


def prediction_rates(results: Path) -> dict[str, float]:
    """Mean prediction images/s per method over the finished jobs and test domains under ``results``."""
    rates: dict[str, list[float]] = {}
    for config in sorted(results.glob("runs/*/config.json")):
        record = json.loads(config.read_text())
        rates.setdefault(record["job"]["method"], []).extend(
            p["images_per_second"] for p in record["predictions"].values())
    return {m: sum(v) / len(v) for m, v in rates.items() if v}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--dry", action="store_true", help="CPU, 32 px, bench-small, 4 pairs, a few steps")
    parser.add_argument("--methods", default="all", help="methods to time (names, globs, tags; default: all)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps (default 30; 3 with --dry)")
    parser.add_argument("--compile", metavar="MODE", default=None,
                        help="also time under torch.compile (default, reduce-overhead, max-autotune)")
    parser.add_argument("--no-grid", action="store_true", help="skip the default grid")
    args = parser.parse_args()
    recipe = DRY if args.dry else PAPER
    device = "cpu" if args.dry else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("No CUDA GPU is visible; use --dry for the CPU check.", file=sys.stderr)
        return 2
    steps = args.steps or (3 if args.dry else 30)
    dev = torch.device(device)
    print(f"{time.strftime('%Y-%m-%d %H:%M')} on {torch.cuda.get_device_name(dev) if device == 'cuda' else 'cpu'}; "
          f"torch {torch.__version__}; recipe {recipe}")
    print(f"{'method':14s} {'model-only':>11s} {'end-to-end':>11s} {'ratio':>6s} {'predict':>9s}  (images/s)")
    short = []
    for name in METHODS.select(args.methods):
        rates = model_rates(name, recipe, dev, steps=steps, warmup=2 if args.dry else 5)
        e2e = end_to_end_rate(name, recipe, device, args.out, steps=steps, scale=0.3 if args.dry else 0.2)
        ratio = e2e / rates.train
        if ratio < 0.9:
            short.append(name)
        line = f"{name:14s} {rates.train:11.1f} {e2e:11.1f} {ratio:6.2f} {rates.predict:9.1f}"
        if args.compile:
            compiled = model_rates(name, recipe, dev, steps=steps, warmup=2 if args.dry else 5,
                                   compile_mode=args.compile)
            saved = 1 / rates.train - 1 / compiled.train  # seconds per image
            images = 2 * recipe.pairs
            paid = (f"paid back after {compiled.compile_seconds / (saved * images):.0f} steps" if saved > 0
                    else "never paid back (slower)")
            line += (f" | compile={args.compile}: {compiled.train:.1f} img/s, {compiled.compile_seconds:.0f} s to "
                     f"compile, {paid}")
        print(line, flush=True)
    if short and device == "cuda":
        print(f"end-to-end below 90% of model-only: {', '.join(short)}")
    if not args.no_grid:
        grid = args.out / "grid"
        t0 = time.perf_counter()
        argv = (["run", "--preset", "quick", "--methods", "xception,pg-fdd", "--train", "synth-dfd", "--test",
                 "synth-dfd", "--no-controls", "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2"]
                if args.dry else ["run", "--preset", "default", "--methods", "all"])
        code = bench([*argv, "--device", device, "--no-progress", "--out", str(grid)])
        print(f"grid ({' '.join(argv[1:])}): exit {code}, {time.perf_counter() - t0:.0f} s")
        for name, rate in prediction_rates(grid).items():
            print(f"  predict {name:14s} {rate:10.0f} images/s")
        if code != 0:
            return code
    return 1 if short and device == "cuda" else 0


if __name__ == "__main__":
    sys.exit(main())
