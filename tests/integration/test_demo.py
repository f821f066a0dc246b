"""`tillit demo` (what `make demo` runs) end to end on a small municipality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.synth import SECTORS
from tillit.cli import main

pytestmark = pytest.mark.integration


def test_demo_generates_validates_every_silo_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a relative output directory, as `make demo` passes it
    monkeypatch.chdir(tmp_path)
    # Execute
    code = main(["demo", "--out", "demo-out", "--residents", "4000", "--municipalities", "espoo,vantaa"])
    out = capsys.readouterr().out
    # Assert
    assert code == 0
    root = tmp_path / "demo-out"
    assert json.loads((root / "truth.json").read_text())["municipalities"] == ["espoo", "vantaa"]
    for municipality in ("espoo", "vantaa"):
        for sector in SECTORS:
            report = json.loads((root / "validation" / municipality / f"{sector}.json").read_text())
            assert report["verdict"] in ("pass", "warn")
            assert (root / "validation" / municipality / sector / "docs" / "index.html").is_file()
            assert f"{municipality:<10} {sector:<20} {report['verdict'].upper()}" in out
