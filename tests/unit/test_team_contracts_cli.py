"""A team's own contract in every command that reads contracts: ``--contracts DIR`` and ``$TILLIT_CONTRACTS_PATH``
reach the nodes and the ServerApp, and an unknown contract is one line, exit 2, before anything starts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from nodes.config import load_node_config, write_node_config
from nodes.supernode import supernode_command
from tillit import arguments
from tillit.cli import main
from tillit.local import NodeSetup, node_config

CONTRACT = """\
name: elderly_care
version: 0.1.0
title: Elderly care assessments
sector: elderly_care
identifier: person_id
max_rows_per_resident: 1
key: [person_id]
columns:
  - {name: person_id, type: identity_code, privacy: direct_identifier, format: opaque}
  - {name: falls, type: integer, privacy: sensitive, range: [0, 10]}
"""


@pytest.fixture()
def contracts(tmp_path: Path) -> Path:
    directory = tmp_path / "team-contracts"
    directory.mkdir()
    (directory / "elderly_care.yaml").write_text(CONTRACT)
    return directory


def _spec(tmp_path: Path, group_by: str = "falls") -> Path:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"study_id": "falls-2024", "task": "dp_table", "contract": "elderly_care",
                                "datasets": ["espoo/elderly_care"], "privacy": {"epsilon": 1, "delta": 1e-6},
                                "table": {"group_by": [group_by]}}))
    return spec


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("tillit: error: ") and "Traceback" not in err, err
    return err


def test_federation_run_refuses_an_unknown_contract_before_any_process_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute: the team's contract is not given
    code, out, err = _run(capsys, "federation", "run", "--spec", str(_spec(tmp_path)), "--data", str(tmp_path),
                          "--out", str(tmp_path / "out"))
    # Assert: one line, exit 2, nothing started and nothing written
    assert code == 2 and "unknown contract 'elderly_care'" in _one_line(err)
    assert "starting a SuperLink" not in out and not (tmp_path / "out").exists()


def test_federation_run_refuses_a_missing_contract_directory(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "federation", "run", "--spec", str(_spec(tmp_path)), "--data", str(tmp_path),
                          "--out", str(tmp_path / "out"), "--contracts", str(tmp_path / "nowhere"))
    assert code == 2 and "contract directory" in _one_line(err) and "does not exist" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_federation_run_knows_the_team_contract_by_option_or_environment(
        tmp_path: Path, contracts: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        how: str) -> None:
    # Prepare: the contract is found either way; the extract is missing, so the command stops right after
    args = ["--contracts", str(contracts)] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv("TILLIT_CONTRACTS_PATH", os.pathsep.join([str(contracts), str(contracts)]))
    # Execute
    code, out, err = _run(capsys, "federation", "run", "--spec", str(_spec(tmp_path)), "--data", str(tmp_path),
                          "--out", str(tmp_path / "out"), *args)
    # Assert
    assert code == 2 and "no extract for espoo/elderly_care" in _one_line(err)
    assert "starting a SuperLink" not in out


def test_federation_run_checks_the_spec_against_the_team_contract_before_starting(
        tmp_path: Path, contracts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: an extract where it is expected, and a spec naming a column the contract does not have
    (tmp_path / "espoo").mkdir()
    (tmp_path / "espoo" / "elderly_care.parquet").write_bytes(b"PAR1")
    # Execute
    code, out, err = _run(capsys, "federation", "run", "--spec", str(_spec(tmp_path, "shoe_size")),
                          "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--contracts", str(contracts))
    # Assert
    assert code == 2 and "shoe_size" in _one_line(err)
    assert "starting a SuperLink" not in out and not (tmp_path / "out").exists()


def _config(tmp_path: Path, contract: str = "elderly_care") -> Path:
    setup = NodeSetup("espoo/elderly_care", contract, tmp_path / "elderly_care.parquet")
    return write_node_config(tmp_path / "node" / "node.toml",
                             node_config(setup, tmp_path / "node", "127.0.0.1:9092", None, 9100,
                                         tmp_path / "coordinator.pub", insecure=True))


def test_node_commands_take_the_team_contract_from_the_command_line(
        tmp_path: Path, contracts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a node config that does not list the team's contract directory
    config = _config(tmp_path)
    # Execute
    without = _run(capsys, "node", "ledger", "--config", str(config))
    with_option = _run(capsys, "node", "ledger", "--config", str(config), "--contracts", str(contracts))
    # Assert
    assert without[0] == 2 and "unknown contract 'elderly_care'" in _one_line(without[2])
    assert with_option[0] == 0 and "espoo/elderly_care" in with_option[1]


def test_the_supernode_gets_the_contract_directories_given_to_node_start(tmp_path: Path, contracts: Path) -> None:
    # Prepare: what `tillit node start --contracts DIR` hands the SuperNode it runs
    from nodes.client_app import node_service

    config = load_node_config(_config(tmp_path), [contracts])
    command = supernode_command(config)
    node_config_value = command[command.index("--node-config") + 1]
    # Execute: the node's ClientApp reads the same value back, as Flower parses it
    from flwr.common.config import parse_config_args

    agent = node_service(SimpleNamespace(node_config=parse_config_args([node_config_value])))  # type: ignore[arg-type]
    # Assert
    assert f"tillit-contracts='{contracts.resolve()}'" in node_config_value
    assert agent.contract.name == "elderly_care" and agent.contract.identity_rule.format == "opaque"


def test_contract_commands_read_the_environment_and_the_option(
        tmp_path: Path, contracts: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    listed = _run(capsys, "contract", "list", "--contracts", str(contracts))
    monkeypatch.setenv("TILLIT_CONTRACTS_PATH", str(contracts))
    shown = _run(capsys, "contract", "show", "elderly_care")
    assert listed[0] == 0 and "elderly_care" in listed[1]
    assert shown[0] == 0 and "format `opaque`" in shown[1]


def test_an_unknown_country_is_refused_by_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "synth", "--out", str(tmp_path / "x"), "--country", "de")
    assert code == 2 and "expected one of fi, se, no, dk, is" in _one_line(err)
    assert not (tmp_path / "x").exists()


def test_the_parsers_countries_are_the_generators() -> None:
    from schemas.synth import COUNTRIES

    assert arguments.COUNTRIES == COUNTRIES


def test_coordinator_serve_checks_its_contract_directories_before_opening_any_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLIT_CONTRACTS_PATH", str(tmp_path / "nowhere"))
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(tmp_path / "coord"))
    assert code == 2 and "nowhere does not exist" in _one_line(err)
    assert not (tmp_path / "coord").exists()
