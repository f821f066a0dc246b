"""`tillit node validate`: every class of bad input gets its documented exit code and one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import Municipality
from tests.integration._mutate import mutated, write_frame
from tillit.cli import main

pytestmark = pytest.mark.integration

Change = Callable[[pd.DataFrame], pd.DataFrame]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["node", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tillit: error: ") and "Traceback" not in err
    return lines[0]


def _set(column: str, value: object, rows: slice = slice(0, 3)) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value
        return frame
    return change


def _numbers_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    # exported as text, with a few entries that are not numbers at all
    text = frame["health_segment"].map(lambda v: None if pd.isna(v) else str(int(v)))
    text.iloc[:3] = "high"
    return frame.assign(health_segment=text.astype("str"))


def _extra_year(frame: pd.DataFrame) -> pd.DataFrame:
    # a resident with all six years gets a seventh: the key stays unique, the bound is broken
    full = frame.groupby("person_id")["year"].transform("size") == 6
    extra = frame[full].head(1).assign(year=2025)
    return pd.concat([frame, extra], ignore_index=True)


BROKEN: list[tuple[str, str, Change, str]] = [
    ("missing column", "health_care", lambda f: f.drop(columns=["service_status"]), "table.columns"),
    ("extra column", "health_care", lambda f: f.assign(free_text="x"), "table.columns"),
    ("wrong type", "health_care", _numbers_as_text, "health_segment.type"),
    ("out of range", "health_care", _set("year", 1850), "year.range"),
    ("unknown category", "health_care", _set("service_status", "spa_weekend"), "service_status.categories"),
    ("duplicate key", "population_register", lambda f: pd.concat([f, f.head(2)], ignore_index=True), "key.unique"),
    ("nulls in a required column", "health_care", _set("service_status", None), "service_status.not_null"),
    ("too many rows per resident", "health_care", _extra_year, "resident.max_rows"),
    ("zero rows", "population_register", lambda f: f.head(0), "table.row_count"),
    ("broken identity codes", "population_register", _set("person_id", "131052-308U"), "person_id.identity_code"),
]


@pytest.mark.parametrize(("case", "sector", "change", "check_id"), BROKEN, ids=[b[0] for b in BROKEN])
def test_data_that_break_the_contract_exit_1_and_name_the_check(
        municipality: Municipality, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        case: str, sector: str, change: Change, check_id: str) -> None:
    # Prepare
    data = mutated(municipality.silo(sector), tmp_path / f"{sector}.parquet", change)
    report = tmp_path / "report.json"
    # Execute
    code, out, err = _run(capsys, "--sector", sector, "--data", str(data), "--report", str(report))
    # Assert
    assert code == 1
    line = _one_error_line(err)
    assert "FAIL" in line and check_id in line
    written = json.loads(report.read_text())
    assert written["verdict"] == "fail"
    failed = {c["id"] for c in written["checks"] if c["status"] == "fail"}
    assert check_id in failed


def _bytes(target: Path, content: bytes) -> Path:
    target.write_bytes(content)
    return target


def _truncated(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def _csv(source: Path, target: Path, sep: str = ",", encoding: str = "utf-8") -> Path:
    pd.read_parquet(source).to_csv(target, sep=sep, index=False, encoding=encoding)
    return target


UNUSABLE: list[tuple[str, Callable[[Path, Path], Path], str]] = [
    ("empty file", lambda s, d: _bytes(d / "x.parquet", b""), "is empty (0 bytes)"),
    ("non-Parquet bytes", lambda s, d: _bytes(d / "x.parquet", b"\x89PNG\r\n\x1a\n" * 50), "is not a Parquet file"),
    ("truncated Parquet", lambda s, d: _truncated(s, d / "x.parquet"), "truncated Parquet file"),
    ("CSV with a wrong delimiter", lambda s, d: _csv(s, d / "x.csv", sep=";"), "looks ';'-separated"),
    ("CSV with a wrong encoding", lambda s, d: _csv(s, d / "x.csv", encoding="utf-16"), "is not valid utf-8 text"),
    ("a path that does not exist", lambda s, d: d / "missing.parquet", "does not exist"),
]


@pytest.mark.parametrize(("case", "make", "message"), UNUSABLE, ids=[u[0] for u in UNUSABLE])
def test_unusable_input_exits_2_with_one_line(municipality: Municipality, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              case: str, make: Callable[[Path, Path], Path], message: str) -> None:
    # Prepare
    data = make(municipality.silo("population_register"), tmp_path)
    # Execute
    code, out, err = _run(capsys, "--sector", "population_register", "--data", str(data))
    # Assert
    assert code == 2
    assert message in _one_error_line(err)
    assert out == ""


def test_a_valid_csv_export_passes_like_its_parquet(municipality: Municipality, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(municipality.silo("population_register"), tmp_path / "register.csv")
    code, out, err = _run(capsys, "--sector", "population_register", "--data", str(data))
    assert code == 0, err
    assert out.startswith("register.csv: ") and ("PASS" in out or "WARN" in out)


def test_semicolon_csv_validates_with_the_delimiter_option(municipality: Municipality, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(municipality.silo("child_welfare"), tmp_path / "cw.csv", sep=";")
    code, _, err = _run(capsys, "--sector", "child_welfare", "--data", str(data), "--delimiter", ";")
    assert code == 0, err


def test_a_teams_own_contract_file_validates_its_extract(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         municipality: Municipality) -> None:
    # Prepare: a housing contract written as a file, and a matching extract
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "housing.yaml").write_text(
        "name: housing\nversion: 0.1.0\ntitle: Housing allowance\nsector: housing\nidentifier: person_id\n"
        "max_rows_per_resident: 1\nkey: [person_id]\ncolumns:\n"
        "  - {name: person_id, type: identity_code, privacy: direct_identifier}\n"
        "  - {name: allowance, type: number, privacy: sensitive, range: [0.0, 2000.0]}\n")
    people = pd.read_parquet(municipality.silo("population_register"))
    data = write_frame(pd.DataFrame({"person_id": people["person_id"].head(50), "allowance": 300.0}),
                       tmp_path / "housing.parquet")
    bad = write_frame(pd.DataFrame({"person_id": people["person_id"].head(50), "allowance": 9000.0}),
                      tmp_path / "housing_bad.parquet")
    # Execute
    good_code, _, good_err = _run(capsys, "--sector", "housing", "--data", str(data), "--contracts", str(contracts))
    bad_code, _, bad_err = _run(capsys, "--sector", "housing", "--data", str(bad), "--contracts", str(contracts))
    # Assert
    assert good_code == 0, good_err
    assert bad_code == 1 and "allowance.range" in bad_err


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--sector", "population_register"], 0, "PASS"),
    (["--sector", "health_care"], 1, "table.columns"),
    (["--sector", "no_such_sector"], 2, "unknown contract"),
])
def test_the_real_command_never_prints_a_traceback(municipality: Municipality, args: list[str], code: int,
                                                    text: str) -> None:
    # Execute: the installed entry point in its own process
    done = subprocess.run(
        [sys.executable, "-m", "tillit", "node", "validate", *args,
         "--data", str(municipality.silo("population_register"))],
        capture_output=True, text=True, timeout=120, check=False)
    # Assert
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert text in (done.stdout + done.stderr) or (text == "PASS" and "WARN" in done.stdout)
