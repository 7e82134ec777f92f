from __future__ import annotations

import pytest

from bench.errors import UnknownNameError
from bench.registry import Registry


class Base:
    pass


def make() -> Registry:
    reg: Registry = Registry("method", base=Base, excluded_from_all=("ablation",))

    @reg.register(aliases=["erm"])
    class Xception(Base):
        name = "xception"

    @reg.register()
    class DawFdd(Base):
        name = "daw-fdd"

    @reg.register()
    class DagFdd(Base):
        name = "dag-fdd"

    @reg.register(tags=["ablation"])
    class PgNoSam(Base):
        name = "pg-fdd-nosam"

    return reg


def test_register_and_lookup_by_name_and_alias() -> None:
    reg = make()
    assert reg.get("xception").__name__ == "Xception"
    assert reg.get("erm") is reg.get("xception")
    assert "erm" in reg and "nope" not in reg
    assert len(reg) == 4


def test_duplicate_names_and_aliases_are_refused() -> None:
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.add("xception", type("Other", (Base,), {}))
    with pytest.raises(ValueError, match="'erm' is already registered"):
        reg.add("fresh", type("Other", (Base,), {}), aliases=["erm"])


def test_wrong_base_class_is_refused() -> None:
    reg = make()
    with pytest.raises(TypeError, match="subclass of Base"):
        reg.add("stranger", type("Stranger", (), {}))
    with pytest.raises(TypeError, match="subclass of Base"):
        reg.add("instance", Base())


def test_unknown_name_lists_choices_and_closest_match() -> None:
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("xcepton")
    message = str(info.value)
    assert "Unknown method 'xcepton'" in message
    assert "Did you mean 'xception'?" in message
    assert "xception, daw-fdd, dag-fdd, pg-fdd-nosam" in message


def test_select_all_leaves_out_excluded_tags() -> None:
    assert make().select("all") == ["xception", "daw-fdd", "dag-fdd"]


def test_select_by_glob_comma_list_tag_and_alias() -> None:
    reg = make()
    assert reg.select("da*") == ["daw-fdd", "dag-fdd"]
    assert reg.select("dag-fdd,xception,dag-fdd") == ["dag-fdd", "xception"]
    assert reg.select("ablations") == ["pg-fdd-nosam"]
    assert reg.select("ablation") == ["pg-fdd-nosam"]
    assert reg.select(["erm", "pg*"]) == ["xception", "pg-fdd-nosam"]


def test_select_errors_name_the_token() -> None:
    reg = make()
    with pytest.raises(UnknownNameError, match="pattern 'zz\\*' matches no method"):
        reg.select("zz*")
    with pytest.raises(UnknownNameError, match="Unknown method 'daw'"):
        reg.select("xception,daw")
    with pytest.raises(Exception, match="Empty method selection"):
        reg.select(" , ")


def test_loader_runs_once_on_first_use() -> None:
    calls = []

    def loader() -> None:
        calls.append(1)
        reg.add("late", Base)

    reg: Registry = Registry("thing", base=Base, loader=loader)
    assert reg.names() == ["late"]
    assert reg.names() == ["late"]
    assert calls == [1]


def test_entry_point_plugins_are_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plugin(Base):
        name = "plugin-method"

    class FakeEntryPoint:
        name = "plugin-method"
        value = "somewhere:Plugin"

        def load(self) -> type:
            return Plugin

    class BrokenEntryPoint:
        name = "broken"
        value = "nowhere:Nothing"

        def load(self) -> type:
            raise ImportError("no module named nowhere")

    from bench import registry as module

    monkeypatch.setattr(module.metadata, "entry_points",
                        lambda group: [FakeEntryPoint(), BrokenEntryPoint()] if group == "bench.methods" else [])
    reg: Registry = Registry("method", base=Base, entry_point_group="bench.methods")
    with pytest.warns(UserWarning, match="'broken'.*failed to import"):
        assert reg.names() == ["plugin-method"]
    assert reg.get("plugin-method") is Plugin
