"""The README and docs/ stay short, linked and current: the README keeps its two commands under 200 lines,
no line runs past 120 characters, every relative link lands on a file (and heading) inside the repository,
no tracker numbers, and docs/configuration.md is what the settings classes generate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emberwatch.common import config_doc

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEMO_COMMAND = "bash scripts/setup && .venv/bin/emberwatch demo"
TEST_COMMAND = "bash scripts/test"
MAX_LINE = 120

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
TRACKER_NUMBER = re.compile(r"(?<![\w#&/])#\d+\b|\bissues?\s+#?\d+\b", re.IGNORECASE)


def doc_files() -> list[Path]:
    return [README, *sorted((REPO / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.DOTALL)


def links(text: str) -> list[str]:
    return LINK.findall(prose(text))


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_link_problems(path: Path) -> list[str]:
    problems = []
    for target in links(path.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        if file_part.startswith("/"):
            problems.append(f"{target}: an absolute path")
            continue
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(REPO):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(REPO)}")
    return problems


def test_readme_is_short_and_keeps_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) < 200
    assert DEMO_COMMAND in text
    assert TEST_COMMAND in text
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_line_is_longer_than_120_characters(path):
    long_lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if len(line) > MAX_LINE]
    assert not long_lines, f"{path.relative_to(REPO)}: lines over {MAX_LINE} characters: {long_lines}"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_lands_on_a_file_in_the_repository(path):
    assert relative_link_problems(path) == []


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_tracker_numbers(path):
    assert TRACKER_NUMBER.findall(prose(path.read_text())) == []


def test_the_configuration_page_is_what_the_settings_classes_generate():
    assert config_doc.page_is_current(), f"docs/configuration.md is stale: run {config_doc.REGENERATE_COMMAND}"


def test_the_configuration_page_lists_every_setting_once():
    page = config_doc.markdown_page()
    for variable, _, _ in config_doc.settings_rows():
        assert page.count(f"- `{variable}`,") == 1, variable


def test_the_checks_catch_what_they_must(monkeypatch):
    """The checks above can fail: a missing file, a path outside the repository, an absolute path, a missing
    heading and a tracker number are each caught; links in code, web links and a heading that exists are not."""
    page = REPO / "docs" / "architecture.md"
    ticket = "#" + "12"  # built, so that a search of the sources for tracker numbers does not find this test
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
        "# Title\n\n[a](missing.md) [b](../../shared/DESIGN.md) [c](/etc/passwd) [d](architecture.md#no-such)"
        f" [e](architecture.md#title) [f](https://example.org/x) `[g](in-code.md)` see {ticket}\n"))
    problems = relative_link_problems(page)
    assert [p.split(":")[0] for p in problems] == [
        "missing.md", "../../shared/DESIGN.md", "/etc/passwd", "architecture.md#no-such"]
    assert TRACKER_NUMBER.findall(prose(page.read_text())) == [ticket]
    assert TRACKER_NUMBER.findall(f"PKCS#8 keys, `#fire=<key>`, issue {ticket[1:]}") == [f"issue {ticket[1:]}"]


def test_the_configuration_page_keeps_each_meaning_inside_its_entry():
    """A wrapped meaning never starts a line that Markdown would read as a new list item, heading or quote, and
    text like ``<topics>`` or ``*.dlq`` outside code shows as written."""
    assert config_doc._wrap("x" * 117 + " - y", "- ", "  ") == ["- " + "x" * 117, "  \\- y"]
    assert config_doc._wrap("x" * 117 + " 1. y", "- ", "  ") == ["- " + "x" * 117, "  1\\. y"]
    assert config_doc._escape("<topics> *.dlq `<kept>`") == "&lt;topics&gt; \\*.dlq `<kept>`"
    for line in config_doc.markdown_page().splitlines():
        if line.startswith("  "):
            assert not re.match(r"([-+*>]|#+|\d+[.)])\s", line[2:]), line
