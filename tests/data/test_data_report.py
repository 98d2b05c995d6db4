"""The HTML report is self-contained and shows every column, the findings and the schema."""

from __future__ import annotations

import re

from forgeml import data


def test_report_is_self_contained(ws, adult_path, tmp_path):
    version = data.add(adult_path, name="adult", target="income", workspace=ws)
    path = data.report("adult", tmp_path / "out" / "adult.html", workspace=ws)
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)  # nothing to fetch
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= version.n_columns  # one per column plus the overview
    for column in version.schema:
        assert f"distribution of {column.name}" in html
    for finding in version.quality:
        assert finding.check in html
    assert "Schema" in html and "Quality findings" in html
