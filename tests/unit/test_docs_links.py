"""Every relative link of README.md and docs/*.md leads somewhere: to a file of the checkout and, when it
names one, to a heading (or an explicit ``id``/``name`` anchor) of the Markdown file it points to.

Anchors are computed as GitHub renders them: the heading's text, lower-cased, with everything but
letters, digits, spaces, hyphens and underscores dropped, spaces turned to hyphens, and ``-1``, ``-2``
... appended to repeats. Links inside code (fenced blocks, inline code spans) are not links.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.conftest import REPO_ROOT

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, ...


def _prose(text: str) -> str:
    """The text without code: fenced blocks and inline code spans hold no links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = _prose(text)
    return [*INLINE_LINK.findall(prose), *REFERENCE_LINK.findall(prose)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (its Markdown links and emphasis reduced to their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.lower())  # \w: letters, digits and _ (Unicode)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(text))
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in links(document.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        path = (document.parent / unquote(path_part)).resolve() if path_part else document
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and unquote(anchor).lower() not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {path.relative_to(REPO_ROOT)}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_of_the_checkout(document):
    assert broken_links(document) == []


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path, monkeypatch):
    # given a document with one good and two broken links, and links in code that are no links
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    (tmp_path / "other.md").write_text("# Other\n\n## `ledgerlink local status`\n", encoding="utf-8")
    document = tmp_path / "README.md"
    document.write_text(
        "See [status](other.md#ledgerlink-local-status), [gone](gone.md), [nowhere](other.md#nowhere),\n"
        "[vendor](https://example.com/x.md) and `[code](code.md)`.\n\n```\n[fenced](fenced.md)\n```\n",
        encoding="utf-8",
    )
    # then exactly the two broken ones are reported
    assert broken_links(document) == [
        "gone.md: no such file",
        "other.md#nowhere: no heading #nowhere in other.md",
    ]


def test_anchors_are_githubs_including_repeated_headings():
    assert slug("`ledgerlink local status`") == "ledgerlink-local-status"
    assert slug("The local stack: `make run`") == "the-local-stack-make-run"
    assert slug("Ports, options and files") == "ports-options-and-files"
    assert slug("CRM-born documents") == "crm-born-documents"


DOC_REFERENCE = re.compile(r"docs/([a-z0-9_-]+\.md)(?:#([a-z0-9_-]+))?")


def test_every_docs_page_and_heading_the_code_names_exists():
    # the docstrings and comments point readers at docs/<page>.md#<heading>: those must lead somewhere too
    broken = []
    for root in ("functions", "local", "infra", "tests"):
        for source in sorted((REPO_ROOT / root).rglob("*.py")):
            for page, anchor in DOC_REFERENCE.findall(source.read_text(encoding="utf-8")):
                path = REPO_ROOT / "docs" / page
                if not path.is_file() or (anchor and anchor not in anchors(path)):
                    broken.append(
                        f"{source.relative_to(REPO_ROOT)}: docs/{page}{'#' + anchor if anchor else ''}"
                    )
    assert broken == []
