# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Docstrings, comments and READMEs point at what the repository holds: no
reference to the planning specifications (which users do not have), every
``docs/…`` page named exists, and every ``docs/methods/<m>.md §N`` names a
section that page has (``## §N`` or ``### N``)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p for d in ('mmseg_excel', 'tools', 'configs', 'docs')
    for p in (ROOT / d).rglob('*')
    if p.suffix in ('.py', '.md', '.sh') and '__pycache__' not in p.parts
) + [ROOT / 'README.md']
SPEC = re.compile(r'(?<![\w/])(?:EXCEL|CLIP_ES|WEAKCLIP|NUMBERS)\.md|'
                  r'(?i:\bquirks?\b)|shared/spec|STYLE\.md')
PAGE = re.compile(r'docs/([\w/-]+\.md)')
SECTION = re.compile(r'docs/methods/(\w+)\.md,? §([\d.]+)((?:,? §[\d.]+)*)')


def _sections(page: Path) -> set:
    found = set()
    for line in page.read_text().splitlines():
        m = re.match(r'#{2,3} (?:§)?(\d+(?:\.\d+)?)\b', line)
        if m:
            found.add(m.group(1))
    return found


def test_sources_found():
    assert len(SOURCES) > 50


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(
    ROOT)))
def test_no_spec_references(path):
    bad = [(i + 1, line.strip())
           for i, line in enumerate(path.read_text().splitlines())
           if SPEC.search(line)]
    assert not bad, f'{path.relative_to(ROOT)} cites the specs: {bad[:5]}'


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(
    ROOT)))
def test_named_pages_and_sections_exist(path):
    text = path.read_text()
    for page in PAGE.findall(text):
        assert (ROOT / 'docs' / page).is_file(), \
            f'{path.relative_to(ROOT)} names docs/{page}, which is missing'
    for method, first, rest in SECTION.findall(re.sub(r'\s+', ' ', text)):
        page = ROOT / 'docs' / 'methods' / f'{method}.md'
        have = _sections(page)
        for sec in [first] + re.findall(r'§([\d.]+)', rest):
            sec = sec.rstrip('.')
            for part in re.split(r'[-–]', sec):
                assert part in have or part.split('.')[0] in have, (
                    f'{path.relative_to(ROOT)} cites {page.name} §{sec}, '
                    f'a section the page does not have')
