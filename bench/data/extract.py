"""`bench data extract`: face crops from videos, for datasets that come as videos only.

From each video, ``frames`` evenly spaced frames (the centres of equal stretches of the video, never the
first N: the first seconds of many deepfake videos are not representative), a face found by the LBP
frontal-face cascade that ships inside scikit-image (so nothing downloads at run time), and a square
crop around it grown by ``margin`` on every side, resized to ``size`` and written as PNG. Frames are
decoded with PyAV, whose wheels carry FFmpeg. Both come with the optional extra ``extract``.

A frame in which the cascade finds no face borrows the box of the nearest frame of the same video that
has one (``detected = 0`` in frames.csv says which); a video without any face is listed in
``no_face.csv`` and gets no crops. ``frames.csv`` (path, video, frame, detected, x, y, side) is the start
of a generic-CSV description: add split, label and demographics columns.

The LBP cascade is a light, CPU-only detector: good on frontal faces, weaker on profiles and small faces.
Crops from a stronger detector (the released crops of PG-FDD or DeepfakeBench) remain preferable when
they exist.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from PIL import Image

from bench.errors import BenchError, DataError
from bench.progress import progress_bar

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
INSTALL_HINT = "bench data extract needs the optional extra 'extract' (PyAV, scikit-image): pip install -e '.[extract]'"


@dataclass(frozen=True)
class ExtractOptions:
    """What is cut out of each video."""

    frames: int = 32  # evenly spaced frames per video
    margin: float = 0.3  # the crop's square grows by this fraction of the face box on every side
    size: int = 256  # side of the saved crops, in pixels
    detect_width: int = 480  # frames are scaled down to this width for detection (speed)


@dataclass(frozen=True)
class Box:
    """A square region of a frame, in full-resolution pixels: top-left corner and side."""

    x: int
    y: int
    side: int


def evenly_spaced(n: int, k: int) -> list[int]:
    """Indices of ``k`` of ``n`` frames at the centres of k equal stretches (all of them when k >= n)."""
    k = min(n, k)
    return [int(np.floor((i + 0.5) * n / k)) for i in range(k)]


def extract_videos(videos: Sequence[Path], out: Path, *, options: ExtractOptions, workers: int = 0,
                   progress: bool = True, root: Path | None = None) -> pd.DataFrame:
    """Extract crops of every video into ``out``; write and return frames.csv (and no_face.csv when needed)."""
    _require()
    if not videos:
        raise DataError(f"No videos to extract (suffixes {', '.join(VIDEO_SUFFIXES)}).")
    out.mkdir(parents=True, exist_ok=True)
    names = [_video_name(v, root) for v in videos]
    calls = (delayed(extract_video)(v, out, name, options) for v, name in zip(videos, names, strict=True))
    # worker processes pay off from a few videos on (each takes seconds); results come back in order
    n_workers = workers or (1 if len(videos) < 4 else -1)
    if n_workers == 1:
        results: Iterator = (extract_video(v, out, n, options) for v, n in zip(videos, names, strict=True))
    else:
        results = Parallel(n_jobs=n_workers, backend="loky", return_as="generator")(calls)
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    bar = progress_bar(total=len(videos), unit="video", desc="extracting", show=progress)
    for name, (video_rows, reason) in zip(names, results, strict=True):
        rows += video_rows
        if reason:
            failed.append({"video": name, "reason": reason})
        bar.update(1)
    bar.close()
    frames = pd.DataFrame(rows, columns=["path", "video", "frame", "detected", "x", "y", "side"])
    frames.to_csv(out / "frames.csv", index=False)
    if failed:
        pd.DataFrame(failed).to_csv(out / "no_face.csv", index=False)
    else:
        (out / "no_face.csv").unlink(missing_ok=True)
    return frames


def extract_video(path: Path, out: Path, name: str, options: ExtractOptions) -> tuple[list[dict[str, Any]], str]:
    """Crops of one video; returns the frames.csv rows and, when no crop could be made, the reason."""
    try:
        frames = dict(read_frames(path, options.frames))
    except DataError as exc:
        return [], str(exc)
    boxes = {i: detect_face(frame, detect_width=options.detect_width) for i, frame in frames.items()}
    found = [i for i, box in boxes.items() if box is not None]
    if not found:
        return [], f"no face found in {len(frames)} frame(s)"
    rows = []
    (out / name).mkdir(parents=True, exist_ok=True)
    for i, frame in frames.items():
        face = boxes[i] or boxes[min(found, key=lambda j: abs(j - i))]
        square = square_around(face, options.margin)
        crop = crop_square(frame, square, options.size)
        relative = f"{name}/{i:05d}.png"
        Image.fromarray(crop).save(out / relative, compress_level=1)
        rows.append({"path": relative, "video": name, "frame": i, "detected": int(boxes[i] is not None),
                     "x": square.x, "y": square.y, "side": square.side})
    return rows, ""


def read_frames(path: Path, k: int) -> Iterator[tuple[int, np.ndarray]]:
    """The ``k`` evenly spaced frames of a video as (index, RGB uint8 array), decoding in order (exact
    indices; seeking to key frames is not)."""
    av = _require()["av"]
    try:
        with av.open(str(path)) as container:
            n = container.streams.video[0].frames or sum(1 for p in container.demux(video=0) if p.size)
        wanted = evenly_spaced(n, k)
        if not wanted:
            raise DataError(f"{path}: no video frames")
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    yield i, frame.to_ndarray(format="rgb24")
                if i >= wanted[-1]:
                    break
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise DataError(f"{path}: not a readable video ({exc})") from None


def detect_face(frame: np.ndarray, *, detect_width: int = 480) -> tuple[int, int, int, int] | None:
    """The most confidently detected face as (x, y, w, h) in ``frame``'s pixels, or None.

    The cascade reports a face several times, at neighbouring positions and scales; a false alarm
    mostly once. Detections are grouped by overlap and the biggest group (then the largest box) wins.
    """
    cascade = _cascade()
    scale = min(1.0, detect_width / frame.shape[1])
    small = frame if scale == 1.0 else np.asarray(Image.fromarray(frame).resize(
        (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale))), Image.Resampling.BILINEAR))
    shortest = min(small.shape[:2])
    hits = cascade.detect_multi_scale(img=small, scale_factor=1.15, step_ratio=1, min_size=(24, 24),
                                      max_size=(shortest, shortest))
    if not hits:
        return None
    boxes = np.array([[h["c"], h["r"], h["width"], h["height"]] for h in hits], dtype=np.float64)
    groups = _overlap_groups(boxes)
    best = max(groups, key=lambda g: (len(g), boxes[g, 2].max()))
    x, y, w, h = boxes[best].mean(axis=0) / scale
    return round(x), round(y), round(w), round(h)


def square_around(face: tuple[int, int, int, int], margin: float) -> Box:
    x, y, w, h = face
    side = round(max(w, h) * (1 + 2 * margin))
    return Box(x=round(x + w / 2 - side / 2), y=round(y + h / 2 - side / 2), side=max(1, side))


def crop_square(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The square ``box`` of ``frame`` (edge pixels repeated where it leaves the frame), resized to ``size``."""
    height, width = frame.shape[:2]
    pad = max(0, -box.x, -box.y, box.x + box.side - width, box.y + box.side - height)
    if pad:
        frame = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    region = frame[box.y + pad:box.y + pad + box.side, box.x + pad:box.x + pad + box.side]
    return np.asarray(Image.fromarray(region).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def find_videos(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise DataError(f"{folder}: no such file or folder of videos.")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


# ------------------------------------------------------------------------------------------ internals
def _video_name(video: Path, root: Path | None) -> str:
    """The video's path below ``root`` without its suffix (unique within a folder tree), POSIX."""
    relative = video.relative_to(root) if root is not None and video.is_relative_to(root) else Path(video.name)
    return relative.with_suffix("").as_posix()


def _overlap_groups(boxes: np.ndarray, threshold: float = 0.3) -> list[list[int]]:
    """Connected groups of boxes (x, y, w, h) whose intersection over union exceeds ``threshold``."""
    n = len(boxes)
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    inter = (np.clip(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1), 0, None)
             * np.clip(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1), 0, None))
    area = boxes[:, 2] * boxes[:, 3]
    linked = inter / (area[:, None] + area - inter) > threshold
    group = list(range(n))
    for i in range(n):
        for j in range(i + 1, n):
            if linked[i, j]:
                old, new = group[j], group[i]
                group = [new if g == old else g for g in group]
    return [[i for i in range(n) if group[i] == g] for g in dict.fromkeys(group)]


@functools.cache
def _cascade() -> Any:
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


@functools.cache
def _require() -> dict[str, Any]:
    try:
        import av
        import skimage.feature  # noqa: F401
    except ImportError:
        raise BenchError(INSTALL_HINT) from None
    return {"av": av}
