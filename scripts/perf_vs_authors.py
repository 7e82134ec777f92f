"""Side by side with the authors' code (Purdue-M2/Fairness-Generalization), on this machine, same interpreter,
runs interleaved: the PG-FDD training step (SAM, fp32, CPU), the host reads a step makes, and the
fairness metrics of one prediction set. Nothing here is needed by the harness or its tests.

    python scripts/perf_vs_authors.py PATH/TO/Fairness-Generalization [--sizes 64,128] [--pairs 8]

PATH is a checkout of the authors' repository (its `training/` folder is imported as they run it; their
pretrained weights are not needed: both models start from the same kind of random initialisation, which
does not change the time of a step). Prints a Markdown table for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.method import METHODS, MethodInfo
from bench.metrics import fairness_gaps, group_table

LR, MOMENTUM, WEIGHT_DECAY, RHO = 5e-4, 0.9, 5e-3, 0.05  # the paper's recipe (their train.py)


# ------------------------------------------------------------------------------------------ theirs
@contextlib.contextmanager
def authors_code(training: Path) -> Iterator[None]:
    """Their `training/` on sys.path and as the working folder, with torch.load of their pretrained file
    answering an empty state dict (their loader is non-strict), as long as the block runs. Their
    networks package imports every backbone it has; when `efficientnet_pytorch` is not installed an empty
    stand-in is imported instead (PG-FDD uses their Xception only)."""
    try:
        import efficientnet_pytorch  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("efficientnet_pytorch")
        stand_in.EfficientNet = None
        sys.modules["efficientnet_pytorch"] = stand_in
    cwd, load = os.getcwd(), torch.load
    sys.path.insert(0, str(training))
    os.chdir(training)
    torch.load = lambda path, *a, **k: {} if "pretrained" in str(path) else load(path, *a, **k)
    try:
        yield
    finally:
        torch.load = load
        os.chdir(cwd)
        sys.path.remove(str(training))


def their_step(training: Path) -> tuple[Callable[[dict], None], Callable[[int, int], dict]]:
    """Their detector, SAM and step as in their train.py; and a maker of their batch dict."""
    with authors_code(training), contextlib.redirect_stdout(io.StringIO()):
        from detectors import DETECTOR
        from sam import SAM
        from utils.bypass_bn import disable_running_stats, enable_running_stats

        model = DETECTOR["fair_df_detector"]()
    model.train()
    optimizer = SAM(model.parameters(), torch.optim.SGD, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                    rho=RHO)

    def step(data: dict) -> None:
        enable_running_stats(model)
        model.get_losses(data, model(data))["overall"].backward()
        optimizer.first_step(zero_grad=True)
        disable_running_stats(model)
        model.get_losses(data, model(data))["overall"].backward()
        optimizer.second_step(zero_grad=True)

    def batch(size: int, pairs: int) -> dict:
        g = torch.Generator().manual_seed(0)
        n = 2 * pairs
        label = torch.cat([torch.ones(pairs), torch.zeros(pairs)]).long()  # their pair loader: fakes first
        return {"image": torch.randn(n, 3, size, size, generator=g), "label": label,
                "label_spe": label * (1 + torch.arange(n) % 4), "intersec_label": torch.arange(n) % 8}

    return step, batch


# ------------------------------------------------------------------------------------------ ours
def our_step(size: int) -> tuple[Callable[[Batch], None], Callable[[int, int], Batch]]:
    run = build_config(preset="paper", sets=[f"method.lr={LR}", f"method.momentum={MOMENTUM}",
                                             f"method.weight_decay={WEIGHT_DECAY}", f"pg-fdd.rho={RHO}"])
    cls = METHODS.get("pg-fdd")
    info = MethodInfo(image_size=size, group_counts=(100,) * 8, num_manipulations=4, epochs=1, steps_per_epoch=1,
                      device=torch.device("cpu"), sampler="paired")
    method = cls(resolve_method_config(cls.Config, run, "pg-fdd"), info).to(memory_format=torch.channels_last)
    method.train()

    def batch(size: int, pairs: int) -> Batch:
        g = torch.Generator().manual_seed(0)
        n = 2 * pairs
        label = torch.cat([torch.zeros(pairs), torch.ones(pairs)]).long()
        group = torch.arange(n) % 8
        return Batch(images=torch.randn(n, 3, size, size, generator=g).contiguous(memory_format=torch.channels_last),
                     label=label, group=group, gender=group // 4, race=group % 4,
                     manipulation=label * (1 + torch.arange(n) % 4), video=torch.arange(n), rows=np.arange(n))

    return (lambda b: method.update(b)), batch


# ------------------------------------------------------------------------------------------ measuring
@contextlib.contextmanager
def counting_host_reads() -> Iterator[dict[str, int]]:
    """Counts calls that copy a tensor's value to the host (.item, .cpu, .numpy, .tolist) and scipy's
    fminbound, while the block runs."""
    import scipy.optimize

    counts = {"host reads": 0, "fminbound": 0}
    originals = {name: getattr(torch.Tensor, name) for name in ("item", "cpu", "numpy", "tolist")}
    fminbound = scipy.optimize.fminbound

    def counted(original: Callable) -> Callable:
        def wrapper(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            counts["host reads"] += 1
            return original(self, *args, **kwargs)
        return wrapper

    def counted_fminbound(*args: object, **kwargs: object) -> object:
        counts["fminbound"] += 1
        return fminbound(*args, **kwargs)

    for name, original in originals.items():
        setattr(torch.Tensor, name, counted(original))
    scipy.optimize.fminbound = counted_fminbound
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
        scipy.optimize.fminbound = fminbound


def timed(step: Callable, batch: object, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return (time.perf_counter() - t0) / steps


def their_functions(path: Path) -> dict[str, object]:
    """The imports and functions of one of their modules, without its module-level statements (their
    fairness_metrics.py evaluates a results folder when imported)."""
    tree = ast.parse(path.read_text())
    tree.body = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef)]
    namespace: dict[str, object] = {}
    exec(compile(tree, str(path), "exec"), namespace)  # their code, run as they run it
    return namespace


def metrics_times(training: Path, n: int, rounds: int) -> tuple[float, float]:
    """Seconds for their `acc_fairness` (reads one .npy pair per intersection) and for ours (per-group
    table and every fairness gap over the intersections) on the same scores."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, n)
    logit = rng.normal(label, 1.0)
    gender, race = rng.integers(0, 2, n), rng.integers(0, 4, n)
    genders, races = ["male", "female"], ["asian", "white", "black", "others"]
    with tempfile.TemporaryDirectory() as tmp, authors_code(training):
        acc_fairness = their_functions(training / "fairness_metrics.py")["acc_fairness"]

        prefix = tmp + "/"
        for g, gname in enumerate(genders):
            for r, rname in enumerate(races):
                keep = (gender == g) & (race == r)
                np.save(f"{prefix}{gname},{rname}labels.npy", label[keep])
                np.save(f"{prefix}{gname},{rname}predictions.npy", logit[keep])
        theirs, ours = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                acc_fairness(prefix, [genders, races])
            theirs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            table = group_table(label, 1 / (1 + np.exp(-logit)), gender * 4 + race)
            fairness_gaps(table["TP"].to_numpy(), table["FP"].to_numpy(), table["TN"].to_numpy(),
                          table["FN"].to_numpy(), table["AUC"].to_numpy())
            ours.append(time.perf_counter() - t0)
    return statistics.median(theirs), statistics.median(ours)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("authors", type=Path, help="a checkout of Purdue-M2/Fairness-Generalization")
    parser.add_argument("--sizes", default="64,128", help="image sides to time the step at")
    parser.add_argument("--pairs", type=int, default=8, help="real/fake pairs per batch")
    parser.add_argument("--steps", type=int, default=3, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (theirs, ours, ...)")
    parser.add_argument("--samples", type=int, default=20_000, help="predictions for the metrics timing")
    args = parser.parse_args()
    training = args.authors / "training"
    if not (training / "detectors" / "fair_df_detector.py").is_file():
        print(f"{training} does not hold the authors' training code (detectors/fair_df_detector.py); give the "
              f"path of a checkout of Purdue-M2/Fairness-Generalization.", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():  # their LDAM loss builds torch.cuda.FloatTensors: the CPU's type here
        torch.cuda.FloatTensor = torch.FloatTensor
    torch.manual_seed(0)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"cores, torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("\n| measurement | theirs | ours | ours / theirs |\n|---|---|---|---|")
    their, their_batch = their_step(training)
    for size in (int(s) for s in args.sizes.split(",")):
        ours, our_batch = our_step(size)
        tb, ob = their_batch(size, args.pairs), our_batch(size, args.pairs)
        their(tb), ours(ob)  # warm-up
        t, o = [], []
        for _ in range(args.rounds):
            t.append(timed(their, tb, args.steps))
            o.append(timed(ours, ob, args.steps))
        t_med, o_med = statistics.median(t), statistics.median(o)
        print(f"| PG-FDD step, {size} px, {args.pairs} pairs, fp32 (s) | {t_med:.3f} | {o_med:.3f} | "
              f"{o_med / t_med:.2f} |")
        if size == int(args.sizes.split(",")[0]):
            with counting_host_reads() as their_counts:
                their(tb)
            with counting_host_reads() as our_counts:
                ours(ob)
            print(f"| host reads per step (.item/.cpu/.numpy/.tolist), {size} px | {their_counts['host reads']} | "
                  f"{our_counts['host reads']} | - |")
            print(f"| fminbound calls per step | {their_counts['fminbound']} | {our_counts['fminbound']} | - |")
    t_m, o_m = metrics_times(training, args.samples, args.rounds)
    print(f"| fairness metrics of {args.samples} predictions, 8 intersections (s) | {t_m:.3f} | {o_m:.4f} | "
          f"{o_m / t_m:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
