"""Reading `flwr run --format json`: the run id, or a clear error when no run started."""

from __future__ import annotations

import pytest

from federation.launch import run_id_from_output
from tillit.errors import TillitError


def test_the_run_id_is_read_from_flwr_runs_json() -> None:
    output = 'Using SuperLink: tillit (127.0.0.1:9092)\n{\n  "success": true,\n  "run-id": "4117075166963998467"\n}\n'
    assert run_id_from_output(output) == 4117075166963998467


@pytest.mark.parametrize("output", ['{"success": false, "run-id": null}', "Error: connection refused", ""])
def test_no_run_is_a_clear_error(output: str) -> None:
    with pytest.raises(TillitError, match="did not start a run"):
        run_id_from_output(output)
