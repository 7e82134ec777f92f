"""The runner: builds a method for a job, trains it epoch by epoch, selects the epoch to keep.

Selection uses only the training domain's validation split (best AUC by default; `SELECTIONS` lists the
rules, fairness-aware ones included), so nothing about a test domain is seen before predictions are
written. After every epoch the runner writes the job's log
and a resumable checkpoint (file names: `bench.store.JobFiles`); an interrupted job continues from its
last finished epoch. A loss that turns NaN or infinite stops the job with `TrainingDiverged`.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench.config import MethodConfig, TrainConfig
from bench.data.cache import FrameCache
from bench.data.loader import BalancedSampler, DeviceLoader, PairedSampler, StandardSampler
from bench.device import Runtime, seed_everything
from bench.errors import ConfigError, DataError, TrainingDiverged
from bench.groups import NUM_CELLS, label_cell
from bench.health import chance_bound, video_counts
from bench.method import Method, MethodInfo, Needs, Validation
from bench.metrics import METRICS, compute_metrics
from bench.predict import bce_from_logits, predict_logits, predictions_frame
from bench.progress import progress_bar
from bench.store import JobFiles, atomic_write_bytes, atomic_write_csv


@dataclass
class TrainResult:
    method: Method
    best_epoch: int
    best_score: float
    epochs_run: int
    seconds: float
    images_per_second: float
    resumed_from_epoch: int | None = None
    notes: list[str] = field(default_factory=list)


def build_method(method_cls: type[Method], config: MethodConfig, cache: FrameCache, train: TrainConfig,
                 device: torch.device, steps_per_epoch: int) -> tuple[Method, list[str]]:
    """Check the data against the method's needs and construct it on ``device``."""
    notes: list[str] = []
    rows = cache.rows("train")
    manifest = cache.manifest.iloc[rows]
    needs = method_cls.needs
    if needs.paired and train.sampler != "paired":
        raise ConfigError(f"Method {method_cls.name!r} needs paired real/fake batches; "
                          f"remove --set train.sampler={train.sampler}.")
    if needs.groups and (manifest["intersection"] < 0).all():
        raise DataError(f"Method {method_cls.name!r} needs group labels, but the training split of "
                        f"{cache.name!r} has none; choose a dataset with demographic annotations.")
    num_manipulations = int(manifest["manipulation"].max()) if len(manifest) else 0
    if needs.manipulations and num_manipulations <= 1:
        notes.append(f"{cache.name} has no manipulation labels: every fake is class 1")
    cells = _train_cells(cache)
    info = MethodInfo(image_size=cache.image_size, group_counts=cache.group_counts("train"),
                      num_manipulations=max(num_manipulations, 1), epochs=train.epochs,
                      steps_per_epoch=steps_per_epoch, device=device, channels_last=train.channels_last,
                      cell_counts=tuple(int(c) for c in np.bincount(cells[cells >= 0], minlength=NUM_CELLS)),
                      sampler="balanced" if needs.balanced else train.sampler)
    method = method_cls(config, info).to(device)
    if train.channels_last:
        method = method.to(memory_format=torch.channels_last)
    return method, notes


def make_sampler(cache: FrameCache, train: TrainConfig,
                 needs: Needs | None = None) -> PairedSampler | StandardSampler | BalancedSampler:
    """The configured sampler, or cell-balanced batches of the same size when ``needs`` asks for them."""
    if train.sampler == "paired":
        real, fake = cache.rows("train", label=0), cache.rows("train", label=1)
        if len(real) == 0 or len(fake) == 0:
            raise DataError(f"The training split of {cache.name!r} needs both real and fake frames "
                            f"(has {len(real)} real, {len(fake)} fake).")
        sampler: PairedSampler | StandardSampler = PairedSampler(real, fake, batch_size=train.batch_size,
                                                                 steps=train.steps_per_epoch)
    else:
        rows = cache.rows("train")
        if len(rows) == 0:
            raise DataError(f"The training split of {cache.name!r} is empty.")
        sampler = StandardSampler(rows, batch_size=train.batch_size, steps=train.steps_per_epoch)
    if needs is None or not needs.balanced:
        return sampler
    # As many images per batch and batches per epoch as the configured sampler, so budgets stay equal.
    cells = _train_cells(cache)
    if (cells < 0).all():
        raise DataError(f"Cell-balanced batches need group labels, but the training split of {cache.name!r} "
                        f"has none; choose a dataset with demographic annotations.")
    images = sampler.batch_size * (2 if isinstance(sampler, PairedSampler) else 1)
    return BalancedSampler(cache.rows("train"), cells, batch_size=images, steps=len(sampler))


def _train_cells(cache: FrameCache) -> np.ndarray:
    """The (group x label) cell of every training frame, in ``cache.rows("train")`` order."""
    manifest = cache.manifest.iloc[cache.rows("train")]
    return label_cell(manifest["intersection"].to_numpy(), manifest["label"].to_numpy())


def train_method(
    *,
    method_cls: type[Method],
    config: MethodConfig,
    cache: FrameCache,
    train: TrainConfig,
    seed: int,
    runtime: Runtime,
    files: JobFiles,
    label: str = "",
) -> TrainResult:
    """Train ``method_cls`` on ``cache``'s train split and return it holding the selected weights."""
    seed_everything(seed)
    sampler = make_sampler(cache, train, method_cls.needs)
    method, notes = build_method(method_cls, config, cache, train, runtime.device, len(sampler))
    loader = DeviceLoader(cache, device=runtime.device, channels_last=train.channels_last)
    val_rows = cache.rows("val")
    if train.selection != "last" and len(val_rows) == 0:
        raise DataError(f"{cache.name!r} has no validation split to select an epoch on; add one or use "
                        f"--set train.selection=last.")
    val_labels = cache.manifest["label"].to_numpy()[val_rows]
    if train.selection in FAIR_SELECTIONS and (cache.manifest["intersection"].to_numpy()[val_rows] < 0).all():
        raise DataError(f"--set train.selection={train.selection} needs group labels on the validation split of "
                        f"{cache.name!r}, which has none; use val_auc.")

    validation = _Validation(method=method, loader=loader, rows=val_rows, labels=val_labels,
                             batch_size=train.eval_batch_size, runtime=runtime.quiet(), dataset=cache.name)
    state = _Progress(train.selection)
    resumed = state.resume(files.checkpoint, method)
    train_seconds, train_images = 0.0, 0
    started = time.perf_counter()
    for epoch in range(state.next_epoch, train.epochs):
        method.train()
        t0 = time.perf_counter()
        logs = _run_epoch(method, loader, sampler.epoch([seed, epoch]), total=len(sampler), runtime=runtime,
                          log_every=train.log_every, desc=f"{label} epoch {epoch + 1}/{train.epochs}", epoch=epoch,
                          validation=validation)
        epoch_seconds = time.perf_counter() - t0
        images = len(sampler) * sampler.batch_size * (2 if isinstance(sampler, PairedSampler) else 1)
        train_seconds += epoch_seconds
        train_images += images
        lr = method.learning_rate()
        method.end_epoch()
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "seconds": round(epoch_seconds, 3),
                               "images_per_s": round(images / max(epoch_seconds, 1e-9), 1), **logs}
        if len(val_rows):
            logits = predict_logits(method, loader, val_rows, batch_size=train.eval_batch_size,
                                    runtime=runtime.quiet())
            row |= validation_scores(predictions_frame(cache, val_rows, logits))
        state.history.append(row)
        state.observe(epoch, method)
        atomic_write_csv(files.log, state.log_frame())
        if train.checkpoint:
            state.save(files.checkpoint, method)

    own_weights = _finish_training(method, loader, sampler.epoch([seed, train.epochs]), runtime=runtime)
    if own_weights is None:
        method.load_state_dict(state.best_weights)
    else:  # the method's own final weights predict (e.g. SWAD's average): the last epoch is marked selected
        notes.append(own_weights)
        state.best_epoch = len(state.history) - 1
        state.best_score = state.score(state.best_epoch)
    if len(val_rows):
        chance = chance_note(state.history[state.best_epoch].get("val_auc", math.nan), labels=val_labels,
                             videos=cache.manifest["video"].to_numpy()[val_rows])
        notes += [chance] if chance else []
    atomic_write_bytes(files.model, _torch_bytes(method.state_dict()))
    atomic_write_csv(files.log, state.log_frame())
    seconds = time.perf_counter() - started
    return TrainResult(method=method, best_epoch=state.best_epoch + 1, best_score=state.best_score,
                       epochs_run=len(state.history), seconds=seconds,
                       images_per_second=train_images / max(train_seconds, 1e-9),
                       resumed_from_epoch=resumed, notes=notes)


def load_trained(method_cls: type[Method], config: MethodConfig, cache: FrameCache, train: TrainConfig,
                 device: torch.device, files: JobFiles) -> Method:
    """Rebuild a finished job's method with its selected weights (to predict a new test domain)."""
    method, _ = build_method(method_cls, config, cache, train, device, steps_per_epoch=1)
    state = torch.load(files.model, map_location=device, weights_only=True)
    method.load_state_dict(state)
    return method


# ------------------------------------------------------------------------------------------- internals
def _run_epoch(method: Method, loader: DeviceLoader, row_batches: Any, *, total: int, runtime: Runtime,
               log_every: int, desc: str, epoch: int, validation: Validation) -> dict[str, float]:
    """One pass of ``method.update``; returns the mean of each logged value.

    Logged values are summed on the device and read back only every ``log_every`` steps, so the
    training step never waits for the host; a non-finite loss is caught at those points.
    """
    sums: dict[str, Any] = {}
    steps = 0
    bar = progress_bar(row_batches, total=total, desc=desc, unit="step", leave=False, show=runtime.progress,
                       position=1)
    for batch in loader.batches(bar):
        with runtime.autocast():
            logs = method.update(batch)
        if "loss" not in logs:
            raise TypeError(f"{type(method).__name__}.update must return a dict with a 'loss' entry.")
        method.after_step(validation)
        for key, value in logs.items():
            value = value.detach().float() if torch.is_tensor(value) else float(value)
            sums[key] = sums.get(key, 0.0) + value
        steps += 1
        if steps % log_every == 0:
            loss = float(sums["loss"]) / steps
            _check_finite(loss, epoch, steps)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
    bar.close()
    means = {k: float(v) / max(steps, 1) for k, v in sums.items()}
    _check_finite(means.get("loss", 0.0), epoch, steps)
    return means


# ------------------------------------------- the Method hooks outside update(): after_step, finish_training
class _Validation:
    """``Method.after_step``'s view of the training domain's validation split (the `Validation` protocol)."""

    def __init__(self, *, method: Method, loader: DeviceLoader, rows: Any, labels: Any, batch_size: int,
                 runtime: Runtime, dataset: str) -> None:
        self.method, self.loader, self.rows, self.labels = method, loader, rows, labels
        self.batch_size, self.runtime, self.dataset = batch_size, runtime, dataset

    def loss(self) -> float:
        if len(self.rows) == 0:
            raise DataError(f"Method {self.method.name!r} needs a validation split, but {self.dataset!r} has "
                            f"none; add one to the dataset.")
        logits = predict_logits(self.method, self.loader, self.rows, batch_size=self.batch_size,
                                runtime=self.runtime)
        return bce_from_logits(self.labels, logits)


def _finish_training(method: Method, loader: DeviceLoader, row_batches: Any, *, runtime: Runtime) -> str | None:
    """``Method.finish_training`` on one lazy epoch of training batches; its note, or None to select."""
    method.train()
    with runtime.autocast():
        return method.finish_training(loader.batches(row_batches))
# ------------------------------------------------------------------------------ end of the Method hooks


def _check_finite(loss: float, epoch: int, step: int) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(f"the training loss became {loss} in epoch {epoch + 1} (by step {step}); "
                               f"lower the learning rate (e.g. --set method.lr=...) or check the data.")


# ------------------------------------------------------------------------------------- model selection
SELECTIONS = ("val_auc", "val_loss", "val_dto", "val_worst_auc", "last")  # TrainConfig.selection's choices
FAIR_SELECTIONS = ("val_dto", "val_worst_auc")  # need group labels on the validation split


def validation_scores(frame: pd.DataFrame) -> dict[str, float]:
    """log.csv's validation columns for one epoch's validation predictions, as `bench.metrics` defines them:
    AUC and worst-group AUC as fractions, loss, and the intersectional F_FPR and F_OAE in percentage points."""
    table = compute_metrics(frame, metrics=["AUC", "F_FPR", "F_OAE", "worst_AUC"], attributes=["intersection"])
    value = {m: float(v) / (METRICS.get(m).scale if m.endswith("AUC") else 1.0)
             for m, v in zip(table["metric"], table["value"], strict=True)}
    labels, logits = frame["label"].to_numpy(), frame["logit"].to_numpy()
    return {"val_auc": value["AUC"], "val_loss": bce_from_logits(labels, logits), "val_F_FPR": value["F_FPR"],
            "val_F_OAE": value["F_OAE"], "val_worst_auc": value["worst_AUC"]}


def selection_objectives(row: dict[str, Any], selection: str) -> tuple[float, ...]:
    """What ``selection`` maximises in one log row (NaN, e.g. a one-class validation split, is -inf)."""
    def get(key: str, sign: float = 1.0) -> float:
        value = sign * float(row.get(key, float("nan")))
        return value if math.isfinite(value) else -math.inf

    return {"val_auc": lambda: (get("val_auc"),), "val_loss": lambda: (get("val_loss", -1.0),),
            "val_worst_auc": lambda: (get("val_worst_auc"),),
            "val_dto": lambda: (get("val_auc"), get("val_F_FPR", -1.0)),
            "last": lambda: (float(row["epoch"]),)}[selection]()


def chance_note(auc: float, *, labels: np.ndarray, videos: np.ndarray) -> str | None:
    """A note for the job's record when the selected epoch's validation AUC is below `health.chance_bound`
    (one-sided 5%, counted over real and fake *videos*: frames of one video are not independent), else None:
    the job may have stalled (docs/METHODS.md, PG-FDD) or the domain may be too hard, and its test numbers
    describe a model that did not learn to detect.
    """
    n0, n1 = video_counts(labels, videos)
    if not math.isfinite(auc) or n0 == 0 or n1 == 0:
        return None
    bound = chance_bound(n0, n1)
    if auc >= bound:
        return None
    return (f"the selected epoch's validation AUC ({auc:.3f}) is not above chance (below {bound:.3f}, which "
            f"a detector scoring at random stays under 95% of the time with {n0} real and {n1} fake "
            f"validation videos): the model may not have learned to detect; see log.csv and docs/METHODS.md")


def distance_to_utopia(objectives: np.ndarray) -> np.ndarray:
    """MEDFAIR's distance to the utopia point, for epochs' (E, K) objectives (higher is better).

    Each objective is min-max normalised over the epochs, so the utopia point (every objective's best
    over the epochs) is 0 and each objective's worst is 1; the distance is the Euclidean norm of the
    normalised shortfalls. An objective equal in every epoch adds 0; an epoch with a missing (-inf)
    objective is infinitely far, and is left out of the minima and maxima.
    """
    finite = np.isfinite(objectives).all(axis=1)
    distance = np.full(len(objectives), np.inf)
    if finite.any():
        kept = objectives[finite]
        best, span = kept.max(axis=0), kept.max(axis=0) - kept.min(axis=0)
        shortfall = np.divide(best - kept, span, out=np.zeros_like(kept), where=span > 0)
        distance[finite] = np.sqrt((shortfall ** 2).sum(axis=1))
    return distance


class _Progress:
    """Selection state and history, saved with the training state so a job can resume.

    The weights of every epoch that no other epoch dominates on the selection's objectives are kept
    (``candidates``): one epoch for a single objective; for ``val_dto`` the Pareto front, since the
    utopia point moves as epochs come, and the epoch nearest it is always on the front.
    """

    def __init__(self, selection: str) -> None:
        self.selection = selection
        self.next_epoch = 0
        self.best_epoch = -1
        self.best_score = -math.inf
        self.candidates: dict[int, dict[str, torch.Tensor]] = {}
        self.history: list[dict[str, Any]] = []

    @property
    def best_weights(self) -> dict[str, torch.Tensor]:
        return self.candidates[self.best_epoch]

    def objectives(self) -> np.ndarray:
        return np.array([selection_objectives(row, self.selection) for row in self.history], dtype=np.float64)

    def score(self, epoch: int) -> float:
        """Epoch ``epoch``'s selection score (higher is better; minus the distance for ``val_dto``)."""
        objectives = self.objectives()
        if self.selection == "val_dto":
            return -float(distance_to_utopia(objectives)[epoch])
        return float(objectives[epoch, 0])

    def observe(self, epoch: int, method: Method) -> None:
        """Epoch ``epoch`` (the last row of ``history``) is done: keep its weights unless an epoch dominates it."""
        self.next_epoch = epoch + 1
        objectives = self.objectives()
        new = objectives[epoch]
        if not any((objectives[e] >= new).all() for e in self.candidates):
            self.candidates = {e: w for e, w in self.candidates.items() if not (new >= objectives[e]).all()}
            self.candidates[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in method.state_dict().items()}
        scores = {e: self.score(e) for e in self.candidates}
        self.best_epoch = max(scores, key=lambda e: (scores[e], -e))
        self.best_score = scores[self.best_epoch]

    def log_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.history)
        frame["selected"] = frame["epoch"] == self.best_epoch + 1
        return frame

    def save(self, path: Path, method: Method) -> None:
        payload = {"next_epoch": self.next_epoch, "best_epoch": self.best_epoch, "best_score": self.best_score,
                   "candidates": self.candidates, "history": self.history,
                   "training_state": method.training_state(), "torch_rng": torch.get_rng_state(),
                   "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        atomic_write_bytes(path, _torch_bytes(payload))

    def resume(self, path: Path, method: Method) -> int | None:
        """Load ``path`` when it exists; returns the number of epochs already done, or None."""
        if not path.exists():
            return None
        payload = torch.load(path, map_location="cpu", weights_only=False)
        method.load_training_state(payload["training_state"])
        self.next_epoch, self.best_epoch = payload["next_epoch"], payload["best_epoch"]
        self.best_score, self.history = payload["best_score"], payload["history"]
        # a checkpoint from before the candidates were kept holds the best epoch's weights only
        self.candidates = payload.get("candidates") or {self.best_epoch: payload["best_weights"]}
        torch.set_rng_state(payload["torch_rng"])
        if payload["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        return self.next_epoch


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
