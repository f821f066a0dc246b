"""Submitting a run: the run config as Flower reads it back, and the run id from `flwr run --format json`."""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.common.config import parse_config_args

from common.errors import ProcessFailed, UsageError
from federation.launch import run_id_from_output, runs_from_output
from federation.run_config import RunConfig


def test_the_run_id_is_read_from_flwr_runs_json() -> None:
    output = 'Using SuperLink: tillit (127.0.0.1:9092)\n{\n  "success": true,\n  "run-id": "4117075166963998467"\n}\n'
    assert run_id_from_output(output) == 4117075166963998467


@pytest.mark.parametrize("output", ['{"success": false, "run-id": null}', "Error: connection refused", ""])
def test_no_run_is_a_clear_error(output: str) -> None:
    with pytest.raises(ProcessFailed, match="did not start a run"):
        run_id_from_output(output)


def test_run_statuses_are_read_from_flwr_ls_json() -> None:
    output = ('{"success": true, "runs": [{"run-id": "12", "status": "running", "elapsed": 3.0},'
              ' {"run-id": "9", "status": "finished:failed"}]}')
    assert runs_from_output(output) == {12: "running", 9: "finished:failed"}


@pytest.mark.parametrize("output", [
    '{\n  "success": false,\n  "error-message": "Using SuperLink: tillit\\n\\n[code: 14] Connection refused."\n}',
    '{"success": true}', "Error: connection refused", ""])
def test_runs_that_cannot_be_listed_are_one_clear_line(output: str) -> None:
    with pytest.raises(ProcessFailed, match="did not list the runs") as error:
        runs_from_output(output)
    assert "\n" not in str(error.value)


def test_the_run_config_survives_flowers_own_parser(tmp_path: Path) -> None:
    # Prepare: paths with a space and a quote, two contract directories
    config = RunConfig(spec=tmp_path / "my 'study'.json", results_dir=tmp_path / "results",
                       contracts_dirs=(tmp_path / "a", tmp_path / "b c"), wait_seconds=12.5, poll_seconds=0.2)
    # Execute: what `flwr run --run-config` does with the argument, then what the ServerApp does with that
    parsed = RunConfig.from_flower(parse_config_args([config.flwr_argument()]))
    # Assert
    assert parsed == config


def test_a_run_config_without_its_spec_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="spec is missing"):
        RunConfig.from_flower({"results-dir": "/tmp/r"})
