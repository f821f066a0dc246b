"""`tillit federation` and `tillit node` commands: expected failures are one line with an exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tillit.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def test_a_missing_or_malformed_spec_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    missing = _run(capsys, "federation", "run", "--spec", str(tmp_path / "no.json"), "--data", str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"study_id": "x", "task": "dp_table", "contract": "health_care",
                               "datasets": ["espoo/health_care"], "privacy": {"epsilon": 1, "delta": 1e-6}}))
    malformed = _run(capsys, "federation", "run", "--spec", str(bad), "--data", str(tmp_path))
    # Assert
    assert missing[0] == 2 and "does not exist" in missing[1]
    assert malformed[0] == 2 and "needs a 'table' section" in malformed[1]
    assert all(err.count("\n") == 1 and "Traceback" not in err for _, err in (missing, malformed))


def test_a_dataset_without_an_extract_is_refused_before_any_process_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"study_id": "x", "task": "dp_table", "contract": "health_care",
                                "datasets": ["espoo/health_care"], "privacy": {"epsilon": 1, "delta": 1e-6},
                                "table": {"group_by": ["service_status"]}}))
    code, err = _run(capsys, "federation", "run", "--spec", str(spec), "--data", str(tmp_path),
                     "--out", str(tmp_path / "out"))
    assert code == 2 and "no extract for espoo/health_care" in err
    assert not (tmp_path / "out").exists()


def test_node_config_errors_name_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[node]\ndataset = "Espoo Health"\ncontract = "health_care"\ndata = "x.parquet"\n'
                      'state_dir = "state"\n[federation]\nsuperlink = "127.0.0.1:9092"\nport = 9094\n'
                      '[budget]\nepsilon = 3.0\ndelta = 1e-6\n[coordinator]\npublic_key = "c.pub"\n')
    code, err = _run(capsys, "node", "init", "--config", str(config))
    assert code == 2 and "node.dataset" in err
    config.write_text(config.read_text().replace("Espoo Health", "espoo/health_care"))
    code, err = _run(capsys, "node", "init", "--config", str(config))
    assert code == 2 and "root_certificates is required unless insecure" in err


def test_certs_refuse_to_replace_a_federation_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["federation", "certs", "--out", str(tmp_path)]) == 0
    code, err = _run(capsys, "federation", "certs", "--out", str(tmp_path))
    assert code == 2 and "exists already" in err
