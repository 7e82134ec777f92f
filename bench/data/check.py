"""`bench data check NAME`: is a dataset usable as described, before hours of caching and training?

The readers already refuse what cannot be used (unreadable annotation files, unknown labels or group
codes, duplicate rows, leaked identities, empty splits): those end the check with one error line, which
names the count and the description's option where there is one (``duplicates``, ``leaks``). What a
chosen policy dropped is shown as a note, as it is recorded in the cache. On
top, the check looks at the frames (every file present; a sample, or all with ``full``, decodes) and
shows what decides whether the fairness numbers will mean anything: frames per video, and the
group x label counts per split, with the cells flagged where a per-group AUC will be NaN (a group with
only one class) or rests on a handful of videos. Errors make the command fail; warnings do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.config import DataConfig
from bench.data.build import decode_rows
from bench.data.cache import cache_settings, ensure_cache
from bench.data.description import DatasetDescription
from bench.data.formats import FORMATS, FileFormat
from bench.data.manifest import SPLITS
from bench.data.readers import SIX_GROUP_NOTE, V2_SIX_GROUP_NOTE, ReadResult
from bench.errors import absent
from bench.groups import GROUP_NAMES, MERGED_UNDER_SIX


@dataclass
class CheckReport:
    """Findings of one check: tables to show, and what is wrong (errors) or doubtful (warnings)."""

    name: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, rendered table)

    def render(self) -> str:
        lines = [f"Data check of {self.name}", ""]
        lines += [f"note: {n}" for n in self.notes]
        for title, body in self.sections:
            lines += ["", title, body]
        lines.append("")
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"ERROR: {e}" for e in self.errors]
        verdict = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines.append(f"{self.name}: {verdict}" + (" - not usable as it is" if self.errors else ""))
        return "\n".join(lines)


def check_dataset(desc: DatasetDescription, data: DataConfig, *, full: bool = False, sample: int = 200,
                  workers: int = 0, min_videos: int = 5, seed: int = 0, progress: bool = False) -> CheckReport:
    """Check ``desc``; raises `DataError` for what the readers refuse, returns every other finding."""
    fmt = FORMATS.get(desc.format)()
    fmt.require(desc)
    report = CheckReport(name=desc.name)
    settings = cache_settings(desc, data)
    if isinstance(fmt, FileFormat):
        read: ReadResult = fmt.read(desc)
        manifest = read.manifest
        report.notes += read.notes
        _check_files(report, read, settings, fmt.crop(desc), full=full, sample=sample, workers=workers, seed=seed,
                     progress=progress)
    else:  # generated data: its manifest is whatever the generator writes into the cache
        cache = ensure_cache(desc, data)
        manifest = cache.manifest
        report.notes += cache.notes
    merged = bool({SIX_GROUP_NOTE, V2_SIX_GROUP_NOTE} & set(report.notes))
    report.sections.append(("Splits", _splits_table(manifest)))
    report.sections.append(("Frames per video", _frames_table(manifest, report)))
    for split in SPLITS:
        rows = manifest[manifest["split"] == split]
        if len(rows):
            report.sections.append((f"Group x label, {split} split: frames (videos)",
                                    _group_table(rows, split, report, min_videos=min_videos, merged=merged)))
    return report


def _check_files(report: CheckReport, read: ReadResult, data: DataConfig, crop: str, *, full: bool, sample: int,
                 workers: int, seed: int, progress: bool) -> None:
    manifest = read.manifest
    exists = np.array([(read.root / p).is_file() for p in manifest["path"]], dtype=bool)
    for row in np.flatnonzero(~exists)[:20]:
        where = read.root / manifest["path"].iat[row]
        report.errors.append(f"{read.origin(int(row))}: {where} {absent(where)}")
    if (~exists).sum() > 20:
        report.errors.append(f"... {int((~exists).sum()) - 20} more missing image file(s)")
    present = np.flatnonzero(exists)
    if not full and len(present) > sample:
        present = np.sort(np.random.default_rng(seed).choice(present, size=sample, replace=False))
    decoded = decode_rows(read, present, size=data.image_size, crop=crop, workers=workers, progress=progress)
    for row, why in sorted(decoded.bad.items()):
        report.errors.append(f"{read.origin(row)}: {read.root / manifest['path'].iat[row]} {why}")
    what = "every frame" if full or len(present) == int(exists.sum()) else f"a random sample of {len(present)} frames"
    report.notes.append(f"{int(exists.sum())} of {len(manifest)} image files present; decoded {what}: "
                        f"{len(decoded.bad)} unreadable" + ("" if full else " (--full decodes every frame)"))
    good = decoded.sizes[(decoded.sizes > 0).all(axis=1)]
    if len(good):
        short = good.min(axis=1)
        report.notes.append(f"source images: {int(np.median(good[:, 0]))}x{int(np.median(good[:, 1]))} px "
                            f"(median width x height), shorter side {int(short.min())}..{int(short.max())} px; "
                            f"cached at {data.image_size} px")
        small = int((short < data.image_size).sum())
        if small:
            report.warnings.append(f"{small} of {len(good)} decoded images are smaller than the cache size "
                                   f"{data.image_size} px and will be upsampled")


def _splits_table(manifest: pd.DataFrame) -> str:
    rows = []
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        if len(part):
            rows.append((split, len(part), int((part["label"] == 0).sum()), int((part["label"] == 1).sum()),
                         part["video"].nunique(), part["identity"].nunique(),
                         ", ".join(map(str, sorted(part.loc[part["label"] == 1, "manipulation"].unique())))))
    table = tabulate(rows, headers=["split", "frames", "real", "fake", "videos", "identities", "manipulations"])
    return table + "\nsplits are video- and identity-disjoint"


def _frames_table(manifest: pd.DataFrame, report: CheckReport) -> str:
    per_video = manifest.groupby(["split", "label", "video"], sort=False).size().rename("frames").reset_index()
    rows = []
    for (split, label), part in per_video.groupby(["split", "label"], sort=False):
        counts = part["frames"].to_numpy()
        median = float(np.median(counts))
        rows.append((split, "fake" if label else "real", len(counts), int(counts.min()), median, int(counts.max())))
        few = int((counts < median / 2).sum())
        if few:
            report.warnings.append(f"{split} {'fakes' if label else 'reals'}: {few} video(s) have fewer than half "
                                   f"the median {median:g} frames (they weigh less in frame-level metrics)")
    rows.sort(key=lambda r: (SPLITS.index(r[0]), r[1]))
    return tabulate(rows, headers=["split", "label", "videos", "min", "median", "max"])


def _group_table(rows: pd.DataFrame, split: str, report: CheckReport, *, min_videos: int, merged: bool) -> str:
    names = GROUP_NAMES["intersection"]
    lines = []
    groups = list(range(8)) + ([-1] if (rows["intersection"] < 0).any() else [])
    for g in groups:
        part = rows[rows["intersection"] == g]
        cells, videos = [], []
        for label in (0, 1):
            sub = part[part["label"] == label]
            videos.append(sub["video"].nunique())
            cells.append(f"{len(sub)} ({videos[-1]})")
        name = names[g] if g >= 0 else "unknown"
        flag = ""
        if g in MERGED_UNDER_SIX and merged and len(part) == 0:
            flag = "merged into Others (6-group coding)"
        elif len(part) == 0:
            flag = "absent"
        elif min(videos) == 0:
            flag = f"EMPTY {'real' if videos[0] == 0 else 'fake'} cell: per-group AUC is NaN"
            if g >= 0:
                report.warnings.append(f"{split} split, {name}: no {'real' if videos[0] == 0 else 'fake'} frames, "
                                       f"so its per-group AUC (and TPR or FPR) is NaN")
        elif min(videos) < min_videos:
            flag = f"tiny: < {min_videos} videos"
            if g >= 0:
                report.warnings.append(f"{split} split, {name}: only {min(videos)} "
                                       f"{'real' if videos[0] < videos[1] else 'fake'} video(s); its per-group "
                                       f"metrics rest on very few videos")
        lines.append((name, *cells, flag))
    return tabulate(lines, headers=["group", "real", "fake", "flag"])
