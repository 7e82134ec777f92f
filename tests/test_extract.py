"""`bench data extract`: evenly spaced frames of a video, a face found by the cascade that ships with
scikit-image, square crops with a margin; videos without a face are listed, not dropped silently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from published_data import cli

from bench.data.extract import Box, crop_square, evenly_spaced

av = pytest.importorskip("av")
skdata = pytest.importorskip("skimage.data")

SHIFT = 4  # the face moves this many pixels to the right per frame, so each frame is recognisable


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_face(n: int) -> list[np.ndarray]:
    face = np.asarray(Image.fromarray(skdata.astronaut()).resize((200, 200)))
    frames = []
    for i in range(n):
        frame = np.full((240, 360, 3), 50, dtype=np.uint8)
        frame[20:220, 10 + SHIFT * i:210 + SHIFT * i] = face
        frames.append(frame)
    return frames


def test_evenly_spaced_is_not_the_first_frames() -> None:
    assert evenly_spaced(40, 4) == [5, 15, 25, 35]
    assert evenly_spaced(3, 8) == [0, 1, 2]


def test_crop_square_pads_by_the_edge_outside_the_frame() -> None:
    frame = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    crop = crop_square(frame, Box(x=-2, y=0, side=4), 4)
    assert (crop[:, 0] == frame[:, 0]).all() and (crop[:, 2:] == frame[:, :2]).all()


def test_extract_crops_faces_from_evenly_spaced_frames(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    videos = tmp_path / "videos"
    (videos / "part1").mkdir(parents=True)
    source = moving_face(30)
    write_video(videos / "part1" / "talking.mp4", source)
    write_video(videos / "wall.mp4", [np.full((120, 160, 3), 10 * i, dtype=np.uint8) for i in range(10)])
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "crops"
    assert cli("data", "extract", str(videos), str(out), "--frames", "5", "--size", "64", "--no-progress") == 0
    std = capsys.readouterr()
    assert "5 face crops of 1 of 3 video(s)" in std.out and "2 video(s) gave no crop" in std.err

    frames = pd.read_csv(out / "frames.csv")
    assert list(frames["frame"]) == [3, 9, 15, 21, 27] and set(frames["video"]) == {"part1/talking"}
    assert frames["detected"].all()
    # the box follows the face: SHIFT pixels per frame, within the cascade's jitter
    assert np.abs(np.diff(frames["x"] + frames["side"] / 2) - SHIFT * 6).max() < 6
    for row in frames.itertuples():
        crop = np.asarray(Image.open(out / row.path))
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        box = Box(x=row.x, y=row.y, side=row.side)
        errors = {i: np.abs(crop.astype(float) - crop_square(frame, box, 64)).mean() for i, frame in enumerate(source)}
        assert min(errors, key=errors.get) == row.frame  # the crop is of that frame, not a neighbour
        assert errors[row.frame] < 4
        # a face fills the middle of the crop: the astronaut's skin is brighter than the backdrop
        assert crop[20:44, 20:44].mean() > 90
    no_face = pd.read_csv(out / "no_face.csv").set_index("video")["reason"]
    assert no_face["wall"] == "no face found in 5 frame(s)"
    assert "not a readable video" in no_face["broken"]
