"""The documentation a user is sent to exists: every ``docs/<Page>.md`` named in the code, the README or the
command-line help is a file in docs/, and every relative link in README.md and docs/*.md resolves to a file
of the repository. A user has only the repository, so a reference to a page it does not hold is a dead end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Folders whose files may name a docs page: the code and the dataset descriptions users copy.
SOURCE_FOLDERS = ("bench", "methods", "scripts", "datasets")
TEXT_SUFFIXES = {".py", ".sh", ".toml", ".md", ".txt", ".cfg", ".ini"}

PAGE_REFERENCE = re.compile(r"\bdocs/([\w.-]+?\.md)\b")
FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`]+`")  # a code span may continue on the next line
INLINE_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
SUBCOMMANDS = re.compile(r"\{([\w,-]+)\} \.\.\.")  # "{list,run,...} ...": subcommands, not choices


# ----------------------------------------------------------------------------------------------- checkers
def missing_pages(text: str, docs: Path = DOCS) -> set[str]:
    """The ``docs/<Page>.md`` references in ``text`` with no such file in ``docs``."""
    return {page for page in PAGE_REFERENCE.findall(text) if not (docs / page).is_file()}


def relative_links(markdown: str) -> list[str]:
    """Link targets of a Markdown text that point into the repository (no URL, no pure anchor), without
    their ``#anchor``; links shown as code (in fences or backticks) are not links."""
    prose = INLINE_CODE.sub("", FENCED_BLOCK.sub("", markdown))
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    out = []
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto:, ... or an anchor in the same page
        path = target.split("#", 1)[0]
        if path:
            out.append(path)
    return out


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Relative links of the Markdown file ``page`` that do not resolve to a file or folder inside ``root``."""
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
            broken.append(target)
    return broken


# ----------------------------------------------------------------------------------------------- sources
def source_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                yield path


def cli_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``python -m bench ARGV --help`` prints."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def all_cli_help(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The help of the program and of every subcommand, found from the ``{a,b,...} ...`` lists in the usage
    lines, so a new subcommand is checked without changing this test."""
    helps: dict[str, str] = {}
    pending: list[list[str]] = [[]]
    while pending:
        argv = pending.pop()
        text = cli_help(argv, capsys)
        helps[" ".join(["bench", *argv])] = text
        usage = text.split("\n\n", 1)[0]
        for group in SUBCOMMANDS.findall(usage):
            pending += [[*argv, name] for name in group.split(",")]
    return helps


# ----------------------------------------------------------------------------------------------- tests
def test_docs_pages_named_in_code_and_readme_exist() -> None:
    missing = {f"{path.relative_to(ROOT)}: docs/{page}"
               for path in source_files() for page in missing_pages(path.read_text(encoding="utf-8"))}
    assert not missing, f"references to docs pages that do not exist: {sorted(missing)}"


def test_docs_pages_named_in_cli_help_exist(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no line breaks inside a reference
    helps = all_cli_help(capsys)
    assert {"bench", "bench report", "bench data check"} <= set(helps)  # the walk reached the subcommands
    missing = {f"{command} --help: docs/{page}" for command, text in helps.items() for page in missing_pages(text)}
    assert not missing, f"the CLI help names docs pages that do not exist: {sorted(missing)}"


def test_the_docs_the_readme_and_code_send_readers_to_are_there() -> None:
    # The pages this project promises its users; each must be a real page, not an empty stub.
    for page in ("METRICS.md", "DATA.md", "METHODS.md", "STATISTICS.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        assert text.startswith("# ") and len(text) > 2000, page
        assert "<!-- H-C" not in text, f"{page} still holds its placeholder"


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    assert not broken_links(page), f"{page.relative_to(ROOT)}: links to missing files {broken_links(page)}"


# ----------------------------------------------------------------------------------------------- the checkers
# The planted bad references are spelled through D so that searches of the repository for docs pages it
# cites do not take them for real references.
D = "docs"

def test_a_planted_reference_to_a_missing_page_is_caught(tmp_path: Path) -> None:
    (tmp_path / "METRICS.md").write_text("# Metrics\n")
    text = f'policy = "defined"  # see docs/METRICS.md and {D}/NO_SUCH_PAGE.md (also {D}/Other.md).'
    assert missing_pages(text, tmp_path) == {"NO_SUCH_PAGE.md", "Other.md"}
    assert missing_pages("docs/METRICS.md, the docs folder, docs/", tmp_path) == set()


def test_a_planted_broken_link_is_caught(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "DATA.md").write_text("# Data\n")
    page = tmp_path / "README.md"
    page.write_text(f"See [data](docs/DATA.md#formats), [gone]({D}/GONE.md), [web](https://example.org/x.md),\n"
                    f"[up](../outside.md), [here](#running) and `[code]({D}/IN_CODE.md)`.\n\n"
                    f"```\n[fenced]({D}/FENCED.md)\n```\n\n[ref]: {D}/REF.md\n")
    assert broken_links(page, tmp_path) == [f"{D}/GONE.md", "../outside.md", f"{D}/REF.md"]
