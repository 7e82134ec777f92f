from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench.config import (
    MethodConfig,
    build_config,
    identity_dict,
    parse_set,
    resolve_method_config,
    to_toml,
)
from bench.errors import ConfigError


def test_presets_layer_over_the_paper_defaults() -> None:
    paper = build_config(preset="paper")
    assert (paper.data.image_size, paper.train.epochs, paper.train.batch_size) == (256, 100, 16)
    method = resolve_method_config(MethodConfig, paper, "xception")
    assert (method.backbone, method.lr, method.momentum, method.weight_decay) == ("legacy_xception", 5e-4, 0.9, 5e-3)
    assert (method.lr_step_epochs, method.lr_gamma) == (60, 0.9)
    quick = build_config(preset="quick")
    assert quick.data.image_size == 32 and quick.train.epochs == 3
    assert resolve_method_config(MethodConfig, quick, "xception").backbone == "bench-small"


def test_set_overrides_file_overrides_preset(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text('[train]\nepochs = 7\nsampler = "standard"\n[method]\nlr = 0.2\n'
                    '[methods.xception]\nlr = 0.3\n[plan]\nseeds = [0, 1, 2]\n')
    run = build_config(preset="default", files=[path], sets=["train.epochs=9", "xception.momentum=0.5"])
    assert run.train.epochs == 9 and run.train.sampler == "standard"
    assert run.plan.seeds == [0, 1, 2]
    xception = resolve_method_config(MethodConfig, run, "xception")
    other = resolve_method_config(MethodConfig, run, "daw-fdd")
    assert (xception.lr, xception.momentum) == (0.3, 0.5)
    assert (other.lr, other.momentum) == (0.2, 0.9)


def test_set_values_are_typed_from_the_field() -> None:
    run = build_config(sets=["train.device=cpu", "train.channels_last=false", "data.synthetic_scale=2",
                             "plan.seeds=[3, 4]"])
    assert run.train.device == "cpu" and run.train.channels_last is False
    assert run.data.synthetic_scale == 2.0 and isinstance(run.data.synthetic_scale, float)
    assert run.plan.seeds == [3, 4]
    assert parse_set("xception.backbone=resnet18") == {"xception": {"backbone": "resnet18"}}


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"preset": "fast"}, r"Unknown preset 'fast'\. .*Available presets: quick, default, paper"),
    ({"sets": ["train.epoch=3"]}, r"Unknown config key 'train\.epoch'\. Did you mean 'epochs'\?"),
    ({"sets": ["trainepochs=3"]}, r"Malformed --set 'trainepochs=3': write section\.key=value"),
    ({"sets": ["train.epochs"]}, r"Malformed --set"),
    ({"sets": ["train.epochs=three"]}, r"train\.epochs must be a whole number, got 'three'"),
    ({"sets": ["train.epochs=0"]}, r"train\.epochs must be at least 1"),
    ({"sets": ["train.sampler=balanced"]}, r"train\.sampler must be one of paired, standard; got 'balanced'"),
    ({"sets": ["method.optimiser=adam"]}, r"Unknown config key 'method\.optimiser'\. Did you mean 'optimizer'\?"),
    ({"sets": ["train.channels_last=maybe"]}, r"must be true or false"),
])
def test_bad_settings_name_the_key_and_the_fix(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        build_config(**kwargs)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(files=[tmp_path / "missing.toml"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        build_config(files=[bad])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[train]\nepochs = 3\nwarmup = 2\n")
    with pytest.raises(ConfigError, match=r"Unknown config key 'train\.warmup'"):
        build_config(files=[unknown])
    loose = tmp_path / "loose.toml"
    loose.write_text("epochs = 3\n")
    with pytest.raises(ConfigError, match="must be a \\[section\\]"):
        build_config(files=[loose])


def test_unknown_key_of_a_method_section() -> None:
    @dataclasses.dataclass
    class DawConfig(MethodConfig):
        alpha: float = 0.5

    run = build_config(sets=["daw-fdd.alpah=0.3"])
    with pytest.raises(ConfigError, match=r"Unknown config key 'daw-fdd\.alpah'\. Did you mean 'alpha'\?"):
        resolve_method_config(DawConfig, run, "daw-fdd")
    run = build_config(sets=["daw-fdd.alpha=0.3"])
    assert resolve_method_config(DawConfig, run, "daw-fdd").alpha == 0.3


def test_identity_leaves_out_execution_settings() -> None:
    a = build_config(sets=["train.device=cpu", "train.threads=1", "train.eval_batch_size=7"])
    b = build_config()
    assert identity_dict(a.train) == identity_dict(b.train)
    c = build_config(sets=["train.epochs=11"])
    assert identity_dict(c.train) != identity_dict(b.train)


def test_printed_config_is_valid_toml_that_round_trips(tmp_path: Path) -> None:
    import tomllib

    run = build_config(preset="quick", sets=["plan.seeds=[1, 2]"])
    text = to_toml({"data": dataclasses.asdict(run.data), "train": dataclasses.asdict(run.train),
                    "plan": dataclasses.asdict(run.plan)})
    parsed = tomllib.loads(text)
    assert parsed["plan"]["seeds"] == [1, 2]
    path = tmp_path / "round.toml"
    path.write_text(text)
    again = build_config(preset="default", files=[path])
    assert again.data == run.data and again.train == run.train and again.plan == run.plan
