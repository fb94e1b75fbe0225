# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Every row of the README's bad-input table names tests that exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _rows():
    text = (ROOT / 'README.md').read_text()
    section = text.split('## Bad input', 1)[1].split('\n## ', 1)[0]
    rows = [line for line in section.splitlines()
            if line.startswith('| ') and not line.startswith('| input')]
    return rows


def test_every_row_names_existing_tests():
    rows = _rows()
    assert len(rows) >= 15, rows
    for row in rows:
        refs = re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', row)
        assert refs, f'row without a test: {row}'
        for path, name in refs:
            f = ROOT / path
            assert f.is_file(), f'{path} (row: {row[:60]})'
            assert re.search(rf'^def {name}\(', f.read_text(), re.M), \
                f'{path}::{name} not found (row: {row[:60]})'
