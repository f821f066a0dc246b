"""Nothing raw leaves validation: planted marker values never reach a report, Data Docs or output."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import Municipality
from tests.integration._mutate import write_frame

pytestmark = pytest.mark.integration

MARKERS = {
    "district": "ZQXW-district-5531",                 # a valid value in a free-text column
    "mother_tongue": "ZQXW-tongue-7719",              # an unknown category
    "household_size": 987_654_321,                    # out of range
    "person_id": "ZQXW-id-2208",                      # a malformed identity code
    "birth_date": dt.date(1851, 3, 17),               # out of range date
}


def _planted(municipality: Municipality, tmp_path: Path) -> tuple[Path, list[str]]:
    frame = pd.read_parquet(municipality.silo("population_register"))
    frame["household_size"] = frame["household_size"].astype("Int64")
    for i, (column, value) in enumerate(MARKERS.items()):
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[10 * i: 10 * i + 3], column] = value
    frame["person_id"] = frame["person_id"].astype("str")
    real_codes = frame["person_id"].iloc[100:400].tolist()   # valid codes: must be pseudonymised
    return write_frame(frame, tmp_path / "register.parquet"), real_codes


def _needles(real_codes: list[str]) -> list[bytes]:
    # every string marker starts with ZQXW; the number and the date in the spellings a tool might use
    values = ["ZQXW", "987654321", "987,654,321", "1851-03-17", "17.03.1851", "18510317", *real_codes]
    out = []
    for value in values:
        out += [value.encode("utf-8"), value.encode("utf-16-le")]
    return out


def _scan(root: Path, skip: set[Path], needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path not in skip:
            blob = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n[:20]!r}" for n in needles if n in blob]
    return found


@pytest.mark.parametrize("as_csv", [False, True], ids=["parquet", "csv"])
def test_markers_never_leave_the_extract(municipality: Municipality, tmp_path: Path, as_csv: bool) -> None:
    # Prepare
    data, real_codes = _planted(municipality, tmp_path)
    if as_csv:
        csv = tmp_path / "register.csv"
        pd.read_parquet(data).to_csv(csv, index=False)
        data.unlink()
        data = csv
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp)}
    # Execute
    done = subprocess.run(
        [sys.executable, "-m", "tillit", "node", "validate", "--sector", "population_register",
         "--data", str(data), "--report", str(tmp_path / "out" / "report.json"), "--docs", str(tmp_path / "out" / "docs")],
        capture_output=True, env=env, timeout=180, check=False)
    # Assert: the checks did find the planted problems ...
    assert done.returncode == 1, done.stderr
    report = (tmp_path / "out" / "report.json").read_text()
    for check in ("mother_tongue.categories", "household_size.range", "birth_date.range", "person_id.identity_code"):
        assert re.search(rf'"id": "{re.escape(check)}",[^}}]*"status": "fail"', report), check
    # ... and no marker, no real identity code, appears in any file written or any output
    needles = _needles(real_codes)
    assert not _scan(tmp_path, {data}, needles)
    assert not [n for n in needles if n in done.stdout + done.stderr]
    assert (tmp_path / "out" / "docs" / "index.html").is_file()
    assert list(tmp.iterdir()) == []   # nothing left behind in the temporary directory either


def test_data_docs_make_no_external_request_and_show_the_verdict(municipality: Municipality, tmp_path: Path) -> None:
    # Prepare / Execute
    from tillit.cli import main

    assert main(["node", "validate", "--sector", "health_care", "--data", str(municipality.silo("health_care")),
                 "--docs", str(tmp_path / "docs"), "--report", str(tmp_path / "report.json")]) == 0
    # Assert: no attribute or stylesheet that a browser would fetch from another host
    external = re.compile(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)
    pages = [p for p in (tmp_path / "docs").rglob("*") if p.suffix in (".html", ".css", ".js")]
    assert any(p.name == "index.html" for p in pages)
    offending = [str(p) for p in pages if external.search(p.read_text(encoding="utf-8"))]
    assert offending == []
    # and the validation page leads with Tillit's verdict, which GX's own "Failed" status does not give
    import json

    verdict = json.loads((tmp_path / "report.json").read_text())["verdict"].upper()
    page = next((tmp_path / "docs" / "validations").rglob("*.html")).read_text(encoding="utf-8")
    assert f"Tillit verdict: {verdict}</strong>" in page
    assert "newsletter" not in page.lower()
