"""Resident keys beyond Finland, end to end: `tillit synth --country` writes extracts and the contracts they follow,
`tillit node validate` checks them by their own rule, and cross-sector linkage joins one resident written two
ways in two silos."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nodes.cross_sector as node_side
from schemas.identity import IdentityRule
from schemas.synth import SECTORS
from tests.integration._cross_sector import federation, pooled, run
from tests.integration._mutate import write_frame
from tillit.cli import main

pytestmark = pytest.mark.integration


def _synth(capsys: pytest.CaptureFixture[str], out: Path, country: str, residents: int = 600) -> str:
    code = main(["synth", "--out", str(out), "--residents", str(residents), "--country", country, "--seed", "4"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    return printed


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["node", "validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def swedish(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweden")
    assert main(["synth", "--out", str(root), "--residents", "1500", "--country", "se", "--seed", "4",
                 "--municipalities", "malmo,lund"]) == 0
    return root


def test_a_swedish_synth_run_writes_the_contracts_its_extracts_follow(swedish: Path) -> None:
    truth = json.loads((swedish / "truth.json").read_text())
    written = sorted(p.stem for p in (swedish / "contracts").glob("*.yaml"))
    assert truth["country"] == "se" and written == sorted(SECTORS)
    codes = pd.concat([pd.read_parquet(swedish / m / "population_register.parquet")["person_id"]
                       for m in ("malmo", "lund")])
    assert codes.is_unique and codes.str.fullmatch(r"(19|20)\d{10}").all()


@pytest.mark.parametrize("sector", SECTORS)
def test_tillit_node_validate_passes_every_swedish_extract_with_its_contract(
        swedish: Path, sector: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # Prepare: half the sectors name the contracts by option, half by the environment
    data = swedish / "lund" / f"{sector}.parquet"
    by_option = SECTORS.index(sector) % 2 == 0
    if not by_option:
        monkeypatch.setenv("TILLIT_CONTRACTS_PATH", str(swedish / "contracts"))
    # Execute
    code, out, err = _validate(capsys, "--sector", sector, "--data", str(data), "--report", str(tmp_path / "r.json"),
                               *(["--contracts", str(swedish / "contracts")] if by_option else []))
    # Assert: its identity check is the Swedish rule, and it holds for every row
    assert code == 0, err
    check = next(c for c in json.loads((tmp_path / "r.json").read_text())["checks"] if c["kind"] == "identity_code")
    assert check["status"] == "pass" and "personnummer" in check["description"]


def test_a_swedish_extract_fails_the_finnish_builtin_contract_and_broken_codes_are_counted_not_shown(
        swedish: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare: the register as ';'-separated CSV in the short spelling, three codes with a wrong Luhn digit
    frame = pd.read_parquet(swedish / "malmo" / "population_register.parquet")
    full = frame["person_id"].astype(str)
    hundred = full.str.slice(0, 4).astype(int) <= dt.date.today().year - 100
    short = full.str.slice(2, 8) + np.where(hundred, "+", "-") + full.str.slice(8)
    broken = short.copy()
    broken.iloc[:3] = short.iloc[:3].str.slice(0, 10) + ((short.iloc[:3].str.slice(10).astype(int) + 1) % 10).astype(str)
    good_csv, bad_csv = tmp_path / "register.csv", tmp_path / "broken.csv"
    frame.assign(person_id=short).to_csv(good_csv, sep=";", index=False)
    frame.assign(person_id=broken).to_csv(bad_csv, sep=";", index=False)
    contracts = ["--contracts", str(swedish / "contracts"), "--delimiter", ";"]
    # Execute
    finnish = _validate(capsys, "--sector", "population_register", "--data", str(good_csv), "--delimiter", ";")
    good = _validate(capsys, "--sector", "population_register", "--data", str(good_csv), *contracts)
    bad = _validate(capsys, "--sector", "population_register", "--data", str(bad_csv), *contracts,
                    "--report", str(tmp_path / "bad.json"))
    # Assert
    assert finnish[0] == 1 and "person_id.identity_code" in finnish[2]
    assert good[0] == 0, good[2]
    assert bad[0] == 1 and "person_id.identity_code" in bad[2]
    report = (tmp_path / "bad.json").read_text()
    identity = json.loads(report)["identifier"]
    assert identity == {"missing": 0, "invalid_format": 0, "invalid_date": 0, "invalid_check_character": 3}
    assert not any(code in report for code in [*broken.iloc[:3], *short.iloc[:50], *full.iloc[:50]])


@pytest.mark.parametrize(("country", "pattern"), [("no", r"\d{11}"), ("dk", r"\d{6}-\d{4}"), ("is", r"\d{6}-\d{4}")])
def test_every_nordic_synth_run_validates_with_its_own_contracts(
        country: str, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    printed = _synth(capsys, tmp_path, country)
    code, out, err = _validate(capsys, "--sector", "population_register",
                               "--data", str(tmp_path / "espoo" / "population_register.parquet"),
                               "--contracts", str(tmp_path / "contracts"))
    # Assert: the command told the analyst where the contracts are, and they hold
    assert f"--contracts {tmp_path / 'contracts'}" in printed
    assert code == 0, err
    codes = pd.read_parquet(tmp_path / "espoo" / "population_register.parquet")["person_id"]
    assert codes.str.fullmatch(pattern).all()


def test_cross_sector_linkage_joins_swedish_codes_written_two_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a Swedish municipality; child welfare and employment export the short spelling YYMMDD-NNNN
    # ('+' from the year one turns 100), the register and the other silos the 12-digit one
    data = tmp_path / "data"
    _synth(capsys, data, "se", residents=5000)
    for sector in ("child_welfare", "employment"):
        path = data / "espoo" / f"{sector}.parquet"
        frame = pd.read_parquet(path)
        full = frame["person_id"].astype(str)
        hundred = full.str.slice(0, 4).astype(int) <= dt.date.today().year - 100
        write_frame(frame.assign(person_id=full.str.slice(2, 8) + np.where(hundred, "+", "-") + full.str.slice(8)),
                    path)
    monkeypatch.setattr(node_side, "integer_noise", lambda size, scale: np.zeros(size, dtype=np.int64))
    (tmp_path / "fed").mkdir()
    fed = federation(tmp_path / "fed", data, contracts_dirs=(data / "contracts",))
    spec, plan = fed.spec("swedish-linkage", epsilon=1.0)
    assert plan.cross_sector is not None
    # Execute
    released = run(fed, spec, plan)
    exact = pooled(data, plan.cross_sector.factors, sorted(released.both), rule=IdentityRule("se"))
    # Assert: with the noise off every count equals the pooled one joined on canonical codes — and the cases
    # are there, so the short spellings were linked (a join on the raw strings finds none of them)
    register = set(pd.read_parquet(data / "espoo" / "population_register.parquet")["person_id"])
    welfare = set(pd.read_parquet(data / "espoo" / "child_welfare.parquet")["person_id"])
    assert not register & welfare and exact["cases"] > 10
    assert released.cohort_size[0] == exact["n"] and released.cases[0] == exact["cases"]
    assert {k: v for k, (v, _) in released.exposed.items()} == exact["exposed"]
    assert {k: v for k, (v, _) in released.exposed_cases.items()} == exact["exposed_cases"]
    assert {k: v for k, (v, _) in released.both.items()} == exact["both"]
    assert {k: v for k, (v, _) in released.both_cases.items()} == exact["both_cases"]
