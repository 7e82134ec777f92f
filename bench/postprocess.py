"""Post-hoc fairness: per-group decision thresholds fitted on a job's validation predictions, applied to every
test domain (`bench report --postprocess thr-fpr,thr-eo`).

This is the cheapest way to buy in-domain fairness (Hardt, Price & Srebro, NeurIPS 2016), and it needs no
training: fitted on the training domain's validation split, it shows whether fairness bought in-domain
carries to other domains. Fitting is fairlearn's `ThresholdOptimizer` on the saved scores, one rule per
intersectional group; a group with too few reals or fakes on the validation split (and any group the
validation split lacks) gets the rule fitted on all validation frames pooled, and is counted.

ThresholdOptimizer's rules are randomised (with probability p0 one threshold, p1 another, sometimes a
constant). Here each frame's draw is a fixed uniform number made from the report's seed and the frame's
sample id, so a post-processed prediction is deterministic given the seed, and the same frame gets the same
draw in every job. The post-processed score (what AUC ranks) is the frame's score shifted in logit space
by its group's threshold onto the report threshold, then put on the side of the threshold its decision is
on (docs/METRICS.md, "Post-processed methods"). A post-processed method is named `<method>+<name>`.

Adding a post-processor is one registered class. No torch; fairlearn (scikit-learn) is imported on use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit

from bench.bootstrap import bootstrap_interval, bootstrap_p_value
from bench.errors import BenchError
from bench.predictions import Resampled
from bench.registry import Registry
from bench.resampling import replicate_mean
from bench.store import RunRecord, read_predictions
from bench.tidy import Tidy

__all__ = ["POSTPROCESSORS", "GroupRule", "GroupThresholds", "PostProcessor", "parse_postprocessors"]

# ThresholdOptimizer's constraints: "false_positive_rate_parity", "equalized_odds", ...
POOLED = -1  # the key of the pooled rule


@dataclass(frozen=True)
class GroupRule:
    """One group's randomised threshold rule, as ThresholdOptimizer fits it: with probability ``p0`` a frame
    is called fake when ``score > t0`` (``<`` when ``flip0``), with ``p1`` the same with ``t1``; with
    ``p_ignore`` that draw is replaced by a fake-call with probability ``constant``."""

    p0: float
    t0: float
    p1: float
    t1: float
    flip0: bool = False
    flip1: bool = False
    p_ignore: float = 0.0
    constant: float = 0.0

    def probability(self, score: np.ndarray) -> np.ndarray:
        """P(called fake) of each score (ThresholdOptimizer's ``_pmf_predict``)."""
        first = (score < self.t0) if self.flip0 else (score > self.t0)
        second = (score < self.t1) if self.flip1 else (score > self.t1)
        p = self.p0 * first + self.p1 * second
        return self.p_ignore * self.constant + (1.0 - self.p_ignore) * p

    @property
    def threshold(self) -> float:
        """The threshold of the likelier component (what the post-processed score is shifted by)."""
        return self.t0 if self.p0 >= self.p1 else self.t1


@dataclass(frozen=True)
class GroupThresholds:
    """A fitted post-processor: one rule per fitted intersectional group, the pooled rule for every other
    group, and which groups of the validation split fell back to it (too few reals or fakes)."""

    name: str
    rules: dict[int, GroupRule]
    pooled: GroupRule
    fallback: tuple[int, ...]
    min_group_size: int

    def probability(self, score: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """P(called fake) of each frame under its group's rule (the pooled rule for unfitted groups)."""
        p = self.pooled.probability(score)
        for group, rule in self.rules.items():
            mask = groups == group
            p[mask] = rule.probability(score[mask])
        return p

    def decide(self, frame: pd.DataFrame, *, seed: int) -> np.ndarray:
        """The post-processed decision (1 = fake) of each frame: P(fake) >= its draw (as fairlearn's
        ``predict``), the draw being `frame_uniforms` of the seed and the sample id."""
        score, groups = frame["score"].to_numpy(np.float64), frame["intersection"].to_numpy()
        return (self.probability(score, groups) >= frame_uniforms(frame["sample"], seed=seed)).astype(np.int8)

    def apply(self, frame: pd.DataFrame, *, seed: int, threshold: float) -> pd.DataFrame:
        """``frame`` with the post-processed ``score`` and ``logit``: thresholding the new score at
        ``threshold`` gives `decide`'s decisions exactly."""
        score, groups = frame["score"].to_numpy(np.float64), frame["intersection"].to_numpy()
        fake = self.decide(frame, seed=seed).astype(bool)
        shift = np.full(len(frame), _logit(self.pooled.threshold))
        for group, rule in self.rules.items():
            shift[groups == group] = _logit(rule.threshold)
        logit = _logit(score) - shift + _logit(threshold)
        new = expit(logit)
        below = np.nextafter(threshold, 0.0)
        new = np.where(fake, np.maximum(new, threshold), np.minimum(new, below))
        out = frame.copy()
        out["score"] = new
        out["logit"] = _logit(new)
        return out


def frame_uniforms(samples: Any, *, seed: int) -> np.ndarray:
    """A uniform number in (0, 1) per sample id, fixed by ``seed`` (SipHash of the id, keyed by the seed)."""
    key = f"{int(seed) & 0xFFFFFFFFFFFFFFFF:016x}"[-16:]
    hashed = pd.util.hash_array(np.asarray(samples, dtype=object), hash_key=key, categorize=False)
    return ((hashed >> np.uint64(11)).astype(np.float64) + 0.5) / float(2 ** 53)


def _logit(p: Any) -> Any:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-15, 1.0 - 1e-15)
    return np.log(p) - np.log1p(-p)


# ============================================================================================ registry
class PostProcessor:
    """A post-hoc rule fitted on validation predictions. Subclasses set ``name``, ``description`` and the
    ThresholdOptimizer ``constraints`` they enforce (or override `fit_rules`)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    constraints: ClassVar[str] = ""
    objective: ClassVar[str] = "accuracy_score"

    def fit(self, validation: pd.DataFrame, *, min_group_size: int) -> GroupThresholds:
        """Per-group rules on the validation predictions: groups with at least ``min_group_size`` reals and
        ``min_group_size`` fakes are fitted together under the constraint; the pooled rule is fitted on every
        frame as one group. A validation split without both classes is a `BenchError`."""
        labels = validation["label"].to_numpy().astype(int)
        score = validation["score"].to_numpy(np.float64)
        groups = validation["intersection"].to_numpy().astype(int)
        if len(np.unique(labels)) < 2:
            raise BenchError("the validation predictions need both reals and fakes to fit thresholds")
        counts = pd.crosstab(groups[groups >= 0], labels[groups >= 0])
        present = [int(g) for g in counts.index]
        fitted = [g for g in present if counts.loc[g].reindex([0, 1], fill_value=0).min() >= min_group_size]
        pooled = self.fit_rules(score, labels, np.zeros(len(score), dtype=int))[0]
        mask = np.isin(groups, fitted)
        rules = self.fit_rules(score[mask], labels[mask], groups[mask]) if fitted else {}
        return GroupThresholds(name=self.name, rules=rules, pooled=pooled,
                               fallback=tuple(g for g in present if g not in fitted), min_group_size=min_group_size)

    def fit_rules(self, score: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> dict[int, GroupRule]:
        """fairlearn's ThresholdOptimizer on the scores as they are (its estimator returns them)."""
        import warnings

        from fairlearn.postprocessing import ThresholdOptimizer

        optimizer = ThresholdOptimizer(estimator=_score_estimator(), constraints=self.constraints,
                                       objective=self.objective, prefit=True, predict_method="predict")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimizer.fit(score[:, None], labels, sensitive_features=groups)
        rules = {}
        for group, bunch in optimizer.interpolated_thresholder_.interpolation_dict.items():
            rules[int(group)] = GroupRule(
                p0=float(bunch.p0), t0=float(bunch.operation0.threshold), flip0=bunch.operation0.operator == "<",
                p1=float(bunch.p1), t1=float(bunch.operation1.threshold), flip1=bunch.operation1.operator == "<",
                p_ignore=float(bunch.get("p_ignore", 0.0)), constant=float(bunch.get("prediction_constant", 0.0)))
        return rules


def _score_estimator() -> Any:
    """The 'estimator' ThresholdOptimizer post-processes: it returns the saved scores (column 0 of X)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, *args: Any, **kwargs: Any) -> Scores:
            self.fitted_ = True
            return self

        def predict(self, X: Any) -> np.ndarray:
            return np.asarray(X, dtype=np.float64)[:, 0]

    return Scores().fit()


POSTPROCESSORS: Registry[type[PostProcessor]] = Registry("post-processor", base=PostProcessor)


@POSTPROCESSORS.register()
class EqualFalsePositiveRates(PostProcessor):
    name = "thr-fpr"
    description = "per-group thresholds with equal false-positive rates across intersectional groups"
    constraints = "false_positive_rate_parity"


@POSTPROCESSORS.register()
class EqualisedOdds(PostProcessor):
    name = "thr-eo"
    description = "per-group thresholds with equalised odds (equal FPR and TPR) across intersectional groups"
    constraints = "equalized_odds"


def parse_postprocessors(text: str) -> tuple[str, ...]:
    """``"thr-fpr,thr-eo"`` (names, globs or ``all``) -> their names; empty text -> none. An unknown name is a
    `BenchError` listing the known ones."""
    return tuple(POSTPROCESSORS.select(text)) if text.strip() else ()


# ============================================================================================ the report
@dataclass
class Expanded:
    """The post-processed predictions of a report: one frame per (job, test domain, post-processor), the
    pseudo-runs they belong to, what each fit did, and the jobs that could not be post-processed."""

    files: list[tuple[RunRecord, str, pd.DataFrame]]  # (pseudo-run, test domain, frame)
    fits: pd.DataFrame
    warnings: list[str]


FIT_COLUMNS = ["method", "postprocessor", "train", "seed", "val_frames", "groups_fitted", "groups_fallback",
               "fallback", "min_group_size", "pooled_threshold", "group_labels_at_test"]


def expand(runs: list[RunRecord], domains: dict[str, list[tuple[str, pd.DataFrame]]], names: tuple[str, ...], *,
           min_group_size: int, seed: int, threshold: float) -> Expanded:
    """For every main run and post-processor ``names``: fit on the run's validation predictions and apply to
    each of its test-domain frames (``domains[job_id]``)."""
    files, fits, warnings = [], [], []
    for run in runs:
        if run.role != "main":
            continue
        if not run.validation.exists():
            warnings.append(f"{run.job_id}: no validation predictions, so no post-processing; rerun `bench run` "
                            f"with the same settings to add them (the saved weights predict, nothing retrains).")
            continue
        validation = read_predictions(run.validation)
        for name in names:
            try:
                fitted = POSTPROCESSORS.get(name)().fit(validation, min_group_size=min_group_size)
            except (BenchError, ValueError) as exc:
                warnings.append(f"{run.job_id}: {name} could not be fitted ({exc}); left out.")
                continue
            config = copy.deepcopy(run.config)
            config["job"]["method"] = f"{run.method}+{name}"
            config["postprocess"] = {"name": name, "base_method": run.method, "base_job": run.job_id,
                                     "fallback_groups": list(fitted.fallback)}
            pseudo = RunRecord(job_id=f"{run.job_id}+{name}", path=run.path, config=config)
            for domain, frame in domains.get(run.job_id, []):
                files.append((pseudo, domain, fitted.apply(frame, seed=seed, threshold=threshold)))
            fits.append({"method": config["job"]["method"], "postprocessor": name, "train": run.train,
                         "seed": run.seed, "val_frames": len(validation), "groups_fitted": len(fitted.rules),
                         "groups_fallback": len(fitted.fallback),
                         "fallback": ", ".join(map(str, fitted.fallback)) or "-", "min_group_size": min_group_size,
                         "pooled_threshold": fitted.pooled.threshold, "group_labels_at_test": True})
    return Expanded(files=files, fits=pd.DataFrame(fits, columns=FIT_COLUMNS), warnings=warnings)


EFFECT_COLUMNS = ["method", "postprocessor", "column", "scope", "level", "train", "test", "test_name", "n",
                  "estimate", "ci_low", "ci_high", "p", "p_holm"]
EFFECT_METRICS = ("intersection/F_FPR", "AUC")


def effect_table(significance: pd.DataFrame, fits: pd.DataFrame, tidy: Tidy, resampled: Resampled, *,
                 alpha: float) -> pd.DataFrame:
    """The change each post-processor causes, ``<method>+<name>`` minus ``<method>``, for intersection F_FPR
    and AUC in and across domains, read as post-processed minus original:

    - level ``scope``: the leaderboard's scope averages (over pairs, then seeds) of both, their difference
      with the paired bootstrap interval and p-value (the same test-set resamples for both, each averaged as
      the point value);
    - levels ``seeds``, ``pairs``, ``pair``: the report's pairwise rows for the pair of methods (sign-flip,
      Wilcoxon, and paired bootstrap or DeLong on each train -> test pair).
    """
    rows = [_scope_rows(fits, tidy, resampled, alpha), pairwise_effect(significance, fits)]
    rows = [r for r in rows if len(r)]
    if not rows:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    table = pd.concat(rows, ignore_index=True)
    order = {"column": {c: i for i, c in enumerate(EFFECT_METRICS)}, "scope": {"intra": 0, "cross": 1},
             "level": {"scope": 0, "seeds": 1, "pairs": 2, "pair": 3}}
    table = table.assign(**{f"_{k}": table[k].map(v) for k, v in order.items()}).sort_values(
        ["method", "postprocessor", "_column", "_scope", "_level", "train", "test"], kind="stable")
    return table[EFFECT_COLUMNS].reset_index(drop=True)


def pairwise_effect(significance: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    """The report's pairwise rows of each ``<method>+<name>`` and its ``<method>`` for `EFFECT_METRICS`, turned
    to read post-processed minus original (estimate and interval negated where the report has them the
    other way round)."""
    rows = []
    pairwise = significance[(significance["comparison"] == "pairwise")
                            & significance["column"].isin(EFFECT_METRICS)]
    for post in dict.fromkeys(fits["method"]):
        base, _, name = post.rpartition("+")
        same = pairwise[(pairwise["method"] == post) & (pairwise["other"] == base)]
        flipped = pairwise[(pairwise["method"] == base) & (pairwise["other"] == post)].copy()
        flipped["estimate"] = -flipped["estimate"]
        flipped["ci_low"], flipped["ci_high"] = -flipped["ci_high"], -flipped["ci_low"]
        rows += [part.assign(method=base, postprocessor=name) for part in (same, flipped) if len(part)]
    return pd.concat(rows, ignore_index=True)[EFFECT_COLUMNS] if rows else pd.DataFrame(columns=EFFECT_COLUMNS)


def _scope_rows(fits: pd.DataFrame, tidy: Tidy, resampled: Resampled, alpha: float) -> pd.DataFrame:
    """Level ``scope`` of `effect_table`: per (method, post-processor, scope, column) the difference of the
    scope averages over the jobs that have both, with its paired bootstrap interval and p-value."""
    files = tidy.main_files
    position = {c: i for i, c in enumerate(resampled.columns)}
    columns = [c for c in EFFECT_METRICS if c in set(tidy.main["column"])]
    rows = []
    for post in dict.fromkeys(fits["method"]):
        base, _, name = post.rpartition("+")
        mine = files[files["method"] == post]
        jobs = {j.removesuffix(f"+{name}") for j in mine["job"]}
        theirs = files[(files["method"] == base) & files["job"].isin(jobs)]
        for scope in ("intra", "cross"):
            a, b = mine[mine["scope"] == scope], theirs[theirs["scope"] == scope]
            if a.empty or b.empty:
                continue
            for column in columns:
                estimate = _scope_mean(tidy, a, column) - _scope_mean(tidy, b, column)
                low = high = p = np.nan
                if resampled.n_boot and column in position:
                    diff = (replicate_mean(a, resampled.values) - replicate_mean(b, resampled.values))[position[column]]
                    low, high = (float(v) for v in bootstrap_interval(diff, estimate=estimate, alpha=alpha))
                    p = float(bootstrap_p_value(diff, estimate=estimate))
                rows.append({"method": base, "postprocessor": name, "column": column, "scope": scope,
                             "level": "scope", "train": "", "test": "", "test_name": "paired bootstrap",
                             "n": len(a), "estimate": estimate, "ci_low": low, "ci_high": high, "p": p,
                             "p_holm": np.nan})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _scope_mean(tidy: Tidy, files: pd.DataFrame, column: str) -> float:
    """The leaderboard's value of ``files`` for ``column``: the mean over their pairs per seed, then over seeds."""
    rows = tidy.main[tidy.main["file"].isin(files["file"]) & (tidy.main["column"] == column)]
    return float(rows.groupby("seed")["value"].mean().mean())
