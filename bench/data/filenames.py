"""The file-name schemes of the Purdue lab's released face crops: which video and identity a frame is.

The released annotation files (purdue-v2 shape) keep every real frame of a dataset in one folder and every
fake in another, so the folder says nothing; the video and the identity are in the file name. Each
dataset's crops follow a fixed scheme (a leading face index ``0_``, then the video's own name, then the
frame number 1, 11, ..., 291). A scheme here is a list of rules, one per kind of video; a file name that
fits no rule of its scheme is refused by the reader (it names the file and row), because a guessed video
would silently break the cluster bootstrap and the leak check.

What each rule yields: the video (the name without the face index and the frame number, so it is unique
in the dataset and names the manipulation), the identity (the target person where the name says it, else
the video), the class the name implies (``None`` when the name does not say), and for FF++ the
manipulation code (numbered like the PG-FDD ``spe_label``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# FF++ methods, numbered like the PG-FDD spe_label (1 Deepfakes .. 5 FaceShifter).
FFPP_METHODS: dict[str, int] = {"Deepfakes": 1, "Face2Face": 2, "FaceSwap": 3, "NeuralTextures": 4,
                                "FaceShifter": 5}
_FRAME = r"_(?P<frame>\d+)\.(?:png|jpe?g)$"
_FACE = r"^\d+_"


@dataclass(frozen=True)
class NameRule:
    """One kind of file name: a pattern (groups ``video``, ``identity``, optionally ``method``) and the class
    it implies (``None``: either class; the video then carries the class, as real and fake numbers may
    repeat)."""

    kind: str  # what the rule describes, for messages ("FF++ fake")
    example: str
    pattern: re.Pattern[str]
    label: int | None


def _rule(kind: str, example: str, body: str, label: int | None) -> NameRule:
    return NameRule(kind=kind, example=example, pattern=re.compile(_FACE + body + _FRAME), label=label)


_METHODS = "|".join(FFPP_METHODS)
SCHEMES: dict[str, tuple[NameRule, ...]] = {
    "ffpp": (
        _rule("FF++ fake", "0_Deepfakes_000_003_11.png",
              rf"(?P<video>(?P<method>{_METHODS})_(?P<identity>\d{{3}})_\d{{3}})", 1),
        _rule("FF++ real", "0_youtube_000_11.png", r"(?P<video>youtube_(?P<identity>\d{3}))", 0),
    ),
    "celebdf": (
        _rule("Celeb-DF fake", "0_Celeb-synthesis_id0_id16_0000_11.png",
              r"(?P<video>Celeb-synthesis_(?P<identity>id\d+)_id\d+_\d+)", 1),
        _rule("Celeb-DF real", "0_Celeb-real_id0_0000_11.png", r"(?P<video>Celeb-real_(?P<identity>id\d+)_\d+)", 0),
        _rule("Celeb-DF YouTube real", "0_YouTube-real_00000_11.png", r"(?P<video>(?P<identity>YouTube-real_\d{5}))",
              0),
    ),
    "dfd": (
        _rule("DFD fake", "0_01_02__exit_phone_room__YVGY8LOK_11.png",
              r"(?P<video>(?P<identity>\d{2})_\d{2}__[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*__[A-Z0-9]{8})", 1),
        _rule("DFD real", "0_01__exit_phone_room_11.png",
              r"(?P<video>(?P<identity>\d{2})__[A-Za-z-]+(?:_[A-Za-z-]+)*)", 0),
    ),
    "dfdc": (
        _rule("DFDC", "0_1234_11.png", r"(?P<video>(?P<identity>\d+))", None),
    ),
}


@dataclass
class ParsedNames:
    """Per frame: video, identity, the class its name implies (-1: not said), the manipulation it names
    (0: not named), and which frames fit no rule."""

    video: np.ndarray
    identity: np.ndarray
    label: np.ndarray
    manipulation: np.ndarray
    unmatched: np.ndarray


def parse_names(paths: np.ndarray, labels: np.ndarray, scheme: str) -> ParsedNames:
    """Apply ``scheme`` to the file names of ``paths`` (either separator); ``labels`` (0/1) name the class of
    videos whose rule does not imply one."""
    rules = SCHEMES[scheme]
    n = len(paths)
    out = ParsedNames(video=np.empty(n, dtype=object), identity=np.empty(n, dtype=object),
                      label=np.full(n, -1, dtype=np.int64), manipulation=np.zeros(n, dtype=np.int64),
                      unmatched=np.zeros(n, dtype=bool))
    for i, path in enumerate(paths):
        name = path.replace("\\", "/").rsplit("/", 1)[-1]
        for rule in rules:
            match = rule.pattern.match(name)
            if match:
                break
        else:
            out.unmatched[i] = True
            out.video[i] = out.identity[i] = ""
            continue
        video, identity = match["video"], match["identity"]
        if rule.label is None:
            prefix = "fake_" if labels[i] == 1 else "real_"
            video = identity = prefix + video
        out.video[i], out.identity[i] = video, identity
        out.label[i] = -1 if rule.label is None else rule.label
        if "method" in rule.pattern.groupindex:
            out.manipulation[i] = FFPP_METHODS[match["method"]]
    return out


def describe_scheme(scheme: str) -> str:
    """The rules of a scheme as examples, for messages."""
    return "; ".join(f"{r.kind} {r.example}" for r in SCHEMES[scheme])
