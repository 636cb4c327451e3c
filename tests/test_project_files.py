"""The README's and the docs' promises about the project's own files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 250


def _readme_commands() -> list[str]:
    setup = README.read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def _prose(text: str) -> str:
    """The text without fenced code blocks, whose lines are neither headings nor links."""
    lines, fence = [], ""
    for line in text.splitlines():
        marker = re.match(r"\s*(```|~~~)", line)
        if marker and (not fence or marker.group(1) == fence):
            fence = "" if fence else marker.group(1)
        elif not fence:
            lines.append(line)
    return "\n".join(lines)


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: rendered text, lower case, punctuation gone."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 for repeated ones."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(path.read_text()).splitlines():
        heading = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if heading:
            slug = _slug(heading.group(1))
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _relative_links(path: Path) -> list[str]:
    """The targets of a file's Markdown links and images that are not URLs."""
    text = re.sub(r"(`+).+?\1", "", _prose(path.read_text()), flags=re.DOTALL)
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text)
    return [target for target in targets if not re.match(r"[a-zA-Z][\w+.-]*:", target)]


def test_readme_has_exactly_two_setup_commands() -> None:
    """Set up is two commands: install and run, then the tests."""
    assert 2 == len(_readme_commands())


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run runs exactly the test command the README gives users."""
    test_command = _readme_commands()[1]

    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_development_page_gives_the_readme_test_command() -> None:
    """docs/development.md shows the same test command as the README, as a line of its own."""
    test_command = _readme_commands()[1]

    assert test_command in (ROOT / "docs" / "development.md").read_text().splitlines()


def test_readme_is_short() -> None:
    """The README stays a door to the docs: at most 250 lines."""
    lines = len(README.read_text().splitlines())

    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


def test_the_docs_pages_exist() -> None:
    """docs/ holds the pages the README's table links to, so the link test has files to read."""
    assert {"building.md", "running.md", "plan.md", "development.md"} <= {d.name for d in DOCS}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link names an existing file, and every #anchor an existing heading."""
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in _anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")

    assert not broken, broken


def test_anchor_slugs_follow_github() -> None:
    """Anchors are made as GitHub makes them: code marks and punctuation dropped, spaces to -."""
    assert "the-report---report-and---junit" == _slug("The report: `--report` and `--junit`")
    assert "order-without-depends_on" == _slug("Order without `depends_on`")
    assert "the-projects-own-settings-toolkitbuild" == _slug(
        "The project's own settings: `[tool.kitbuild]`"
    )
