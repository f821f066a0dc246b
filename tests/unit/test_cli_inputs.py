"""Every CLI input is checked at the edge: each failure an operator or attacker found (issue 14) is now one
``tillit: error: ...`` line on stderr with the documented exit code, never a traceback or a wrong exit.

The commands that talk to the coordinator run against the real app served by uvicorn on a free port in this
process (``make_world``'s coordinator), or against ``http://127.0.0.1:9`` where they must fail before any request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from common import errors
from federation.processes import free_port
from tests.coordinator.conftest import World, make_world
from tillit import commands
from tillit.cli import EXIT_CODES, main
from tillit.client import CoordinatorClient, route

NOWHERE = "http://127.0.0.1:9"
README = Path(__file__).resolve().parents[2] / "README.md"
DRAFT_OPTIONS = ["--id", "transitions-2031", "--name", "Transitions", "--template", "health_transitions",
                 "--purpose", "Plan health and care services", "--legal-basis", "Act 552/2019",
                 "--organisation", "City of Espoo", "--contact", "planning@espoo.example", "--period", "2031"]


@dataclass
class Served:
    url: str
    world: World
    tokens: dict[str, Path]

    def coordinator(self, who: str) -> list[str]:
        return ["--coordinator", self.url, "--token-file", str(self.tokens[who])]

    def budgets(self) -> list[dict[str, object]]:
        answer = httpx.get(self.url + "/v1/budgets", headers=self.world.headers("admin"))
        assert answer.status_code == 200
        budgets: list[dict[str, object]] = answer.json()
        return budgets


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The coordinator's app served over HTTP on a free port by uvicorn in a thread; token files for its staff."""
    root = tmp_path_factory.mktemp("served")
    worlds = make_world(root / "coordinator")
    world = next(worlds)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the coordinator did not start"
            time.sleep(0.05)
        tokens = {}
        for who in ("admin", "officer", "analyst"):
            tokens[who] = root / f"{who}.token"
            tokens[who].write_text(world.tokens[who] + "\n", encoding="utf-8")
        yield Served(f"http://127.0.0.1:{port}", world, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        next(worlds, None)


@pytest.fixture(autouse=True)
def _no_coordinator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TILLIT_COORDINATOR_URL", "TILLIT_TOKEN", "TILLIT_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(err: str) -> str:
    """The single error line, after checking it is exactly one ``tillit: error:`` line and no traceback."""
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("tillit: error: "), err
    return err


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file, so that ``a_file / "x"`` is a path no one can create."""
    path = tmp_path / "a-file"
    path.write_text("not a directory\n", encoding="utf-8")
    return path


# -- numbers -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2024", "--epsilon", "nan"],
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2024", "--epsilon", "inf"],
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2024", "--epsilon=-inf"],
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2024", "--rho", "1e999"],
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2024", "--epsilon", "1" * 5000],
    ["budget", "cap", "--municipality", "espoo", "--period", "2024", "--epsilon", "NaN"],
    ["budget", "cap", "--municipality", "espoo", "--period", "2024", "--epsilon", "1", "--delta", "inf"],
    ["study", "run", "some-study", "--timeout", "inf"],
], ids=["eps-nan", "eps-inf", "eps-minus-inf", "rho-1e999", "eps-5000-digits", "cap-nan", "cap-delta-inf",
        "timeout-inf"])
def test_a_non_finite_or_absurdly_long_number_is_refused_before_any_request(
        capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    # Execute: an unreachable coordinator; the number must be refused first
    code, out, err = _run(capsys, *args, "--coordinator", NOWHERE)
    # Assert
    assert code == 2 and out == ""
    assert re.search(r"argument --(epsilon|rho|delta|timeout): expected a (finite )?number", _one_line(err))
    assert "1111111111" not in err


@pytest.mark.parametrize("args", [
    ["synth", "--residents", "1" + "0" * 30], ["synth", "--residents", "99"], ["synth", "--seed", "-1"],
    ["synth", "--messiness", "nan"], ["demo", "--residents", "9" * 5000],
])
def test_synthetic_data_options_are_bounded(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            args: list[str]) -> None:
    code, _, err = _run(capsys, *args, "--out", str(tmp_path / "out"))
    assert code == 2 and "argument --" in _one_line(err)
    assert not (tmp_path / "out").exists()


def test_a_nan_epsilon_never_reaches_the_ledger(capsys: pytest.CaptureFixture[str], served: Served) -> None:
    code, _, err = _run(capsys, "budget", "set", *served.coordinator("officer"), "--dataset", "espoo/health_care",
                        "--period", "2024", "--epsilon", "nan")
    assert code == 2 and "finite" in _one_line(err)
    assert served.budgets() == []


# -- token files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "says"), [
    (bytes(range(256)), "is not UTF-8 text"),
    ("tökenä".encode("latin-1"), "is not UTF-8 text"),
    ("tlt_töken".encode("utf-8"), "does not hold a token"),
    (b"tlt_two words", "does not hold a token"),
    (b"\n \n", "is empty"),
    (b"x" * 10_000, "is larger than a token"),
], ids=["binary", "latin-1", "non-ascii-utf8", "two-words", "empty", "10-kb"])
def test_a_token_file_that_holds_no_token_is_one_line_naming_the_file(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, says: str) -> None:
    # Prepare
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    # Execute
    code, _, err = _run(capsys, "principal", "list", "--coordinator", NOWHERE, "--token-file", str(token_file))
    # Assert: exit 2, the path named, nothing of the content repeated
    assert code == 2 and _one_line(err).startswith(f"tillit: error: the token file {token_file} {says}")
    assert "töken" not in err and "two words" not in err


def test_a_token_file_that_cannot_be_read_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      a_file: Path) -> None:
    for path in (tmp_path / "missing", tmp_path, a_file / "x"):
        code, _, err = _run(capsys, "principal", "list", "--coordinator", NOWHERE, "--token-file", str(path))
        assert code == 2 and f"cannot read the token file {path}: " in _one_line(err)


def test_a_token_in_the_environment_is_checked_like_a_file(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLIT_TOKEN", "tlt_ä")
    code, _, err = _run(capsys, "principal", "list", "--coordinator", NOWHERE)
    assert code == 2 and "$TILLIT_TOKEN does not hold a token" in _one_line(err)
    monkeypatch.setenv("TILLIT_COORDINATOR_URL", "ftp://somewhere")
    code, _, err = _run(capsys, "principal", "list")
    assert code == 2 and "$TILLIT_COORDINATOR_URL: expected an http:// or https:// URL" in _one_line(err)


# -- study parameters --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "says"), [
    ("1" * 5000, "--params: a number has too many digits"),
    ('{"epsilon": 1e999}', "--params: a number is too large to be finite"),
    ('{"epsilon": NaN}', "--params: NaN and infinity are not numbers a template takes"),
    ("[" * 50_000, "--params is nested too deeply"),
    ('["espoo"]', "--params must be a JSON object"),
    ("{'epsilon': 1}", "--params is not JSON: Expecting property name enclosed in double quotes"),
], ids=["5000-digits", "1e999", "nan", "deep", "list", "not-json"])
def test_params_that_are_not_a_json_object_of_finite_numbers_are_refused_before_any_request(
        capsys: pytest.CaptureFixture[str], params: str, says: str) -> None:
    code, _, err = _run(capsys, "study", "create", "--coordinator", NOWHERE, *DRAFT_OPTIONS, "--params", params)
    assert code == 2 and says in _one_line(err)


def test_a_params_file_that_is_binary_huge_or_missing_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    # Prepare
    binary, huge = tmp_path / "binary.json", tmp_path / "huge.json"
    binary.write_bytes(bytes(range(256)))
    huge.write_text(json.dumps({"pad": "x" * 100_000}), encoding="utf-8")
    cases = {binary: "is not UTF-8 text", huge: "is larger than 64 KiB", tmp_path / "missing.json": "cannot read"}
    for path, says in cases.items():
        # Execute
        code, _, err = _run(capsys, "study", "create", "--coordinator", NOWHERE, *DRAFT_OPTIONS,
                            "--params", f"@{path}")
        # Assert
        assert code == 2 and says in _one_line(err) and str(path) in err


def test_inline_params_over_64_kib_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "study", "create", "--coordinator", NOWHERE, *DRAFT_OPTIONS,
                        "--params", json.dumps({"pad": "x" * 70_000}))
    assert code == 2 and "--params is longer than 65,536 characters" in _one_line(err)


# -- names in request paths --------------------------------------------------------------------------------------

def test_a_period_with_a_query_stays_one_refused_period(capsys: pytest.CaptureFixture[str], served: Served) -> None:
    # Execute: before, '?x=1' became a query string and the 2031 budget was set, exit 0
    code, _, err = _run(capsys, "budget", "set", *served.coordinator("officer"), "--dataset", "espoo/health_care",
                        "--period", "2031?x=1", "--epsilon", "1")
    # Assert
    assert code == 2 and "path.period: String should match pattern" in _one_line(err)
    assert served.budgets() == []


@pytest.mark.parametrize("args", [
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "2031/x", "--epsilon", "1"],
    ["budget", "set", "--dataset", "espoo/../caps", "--period", "2031", "--epsilon", "1"],
    ["budget", "cap", "--municipality", "..", "--period", "2031", "--epsilon", "1"],
    ["study", "status", "../budgets"],
    ["study", "results", "."],
    ["budget", "set", "--dataset", "espoo/health_care", "--period", "20\r\n31", "--epsilon", "1"],
], ids=["slash", "dot-dot-sector", "dot-dot-municipality", "status-dot-dot", "results-dot", "crlf"])
def test_a_name_that_is_not_one_path_segment_is_refused_by_the_parser(
        capsys: pytest.CaptureFixture[str], served: Served, args: list[str]) -> None:
    code, _, err = _run(capsys, *args, *served.coordinator("officer"))
    assert code == 2 and "argument " in _one_line(err)
    assert served.budgets() == []


def test_the_client_encodes_every_segment_in_one_place() -> None:
    assert route("/v1/budgets/{}/{}/{}", "espoo", "health_care", "2031?x=1#y") == \
        "/v1/budgets/espoo/health_care/2031%3Fx%3D1%23y"
    assert route("/v1/studies/{}/results", "a/b c") == "/v1/studies/a%2Fb%20c/results"
    with pytest.raises(errors.UsageError):
        route("/v1/studies/{}", "..")


# -- what the coordinator refuses --------------------------------------------------------------------------------

def test_a_request_the_coordinator_refuses_as_invalid_exits_2(capsys: pytest.CaptureFixture[str],
                                                              served: Served) -> None:
    # Execute: ε = 1000 is finite, so the CLI sends it; the coordinator's range is 0.001..100 (422)
    code, _, err = _run(capsys, "budget", "set", *served.coordinator("officer"), "--dataset", "espoo/health_care",
                        "--period", "2031", "--epsilon", "1000")
    # Assert
    assert code == 2 and "body.epsilon: Input should be less than or equal to 100" in _one_line(err)
    assert served.budgets() == []


def test_every_error_answer_becomes_its_documented_exit_code(served: Served) -> None:
    # Prepare
    analyst = CoordinatorClient(served.url, served.world.tokens["analyst"])
    cases: list[tuple[type[errors.TillitError], int, object]] = [
        (errors.NotFound, 4, lambda: analyst.get("/v1/no-such-route")),
        (errors.NotFound, 4, lambda: analyst.get(route("/v1/studies/{}", "no-such-study"))),
        (errors.UsageError, 2, lambda: analyst.post("/v1/studies", {"purpose": "x" * (2 * 1024 * 1024)})),
        (errors.UsageError, 2, lambda: analyst.post("/v1/studies", {"id": "x"})),
        (errors.Forbidden, 5, lambda: analyst.get("/v1/principals")),
        (errors.NotAuthenticated, 5, lambda: CoordinatorClient(served.url, "tlt_unknown").get("/v1/me")),
        (errors.ServiceUnavailable, 6, lambda: CoordinatorClient(NOWHERE).get("/v1/me")),
    ]
    for kind, exit_code, call in cases:
        # Execute / Assert
        with pytest.raises(kind) as raised:
            call()  # type: ignore[operator]
        assert raised.value.exit_code == exit_code and "\n" not in raised.value.message


# -- files the CLI writes ----------------------------------------------------------------------------------------

def test_synth_into_an_unwritable_path_is_one_line_naming_it(capsys: pytest.CaptureFixture[str],
                                                             a_file: Path) -> None:
    code, _, err = _run(capsys, "synth", "--out", str(a_file / "x"), "--residents", "100")
    assert code == 2 and _one_line(err) == f"tillit: error: cannot write {a_file / 'x'}: {a_file} is not a directory\n"


@pytest.mark.parametrize("command", [["contract", "docs"], ["federation", "certs"], ["node", "init-secret"]])
def test_other_outputs_into_an_unwritable_path_are_one_line(capsys: pytest.CaptureFixture[str], a_file: Path,
                                                            command: list[str]) -> None:
    code, _, err = _run(capsys, *command, "--out", str(a_file / "x"))
    assert code == 2 and f"cannot write {a_file / 'x'}" in _one_line(err)


def test_study_results_into_an_unwritable_path_fail_before_any_request(capsys: pytest.CaptureFixture[str],
                                                                       a_file: Path) -> None:
    code, _, err = _run(capsys, "study", "results", "some-study", "--coordinator", NOWHERE, "--out", str(a_file / "x"))
    assert code == 2 and f"cannot write {a_file / 'x'}" in _one_line(err)


def test_a_federation_run_into_an_unwritable_path_starts_no_process(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, a_file: Path) -> None:
    # Prepare: a valid spec and an extract where it is expected
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"study_id": "x", "task": "dp_table", "contract": "health_care",
                                "datasets": ["espoo/health_care"], "privacy": {"epsilon": 1, "delta": 1e-6},
                                "table": {"group_by": ["service_status"]}}), encoding="utf-8")
    (tmp_path / "data" / "espoo").mkdir(parents=True)
    (tmp_path / "data" / "espoo" / "health_care.parquet").write_bytes(b"PAR1")
    # Execute
    code, out, err = _run(capsys, "federation", "run", "--spec", str(spec), "--data", str(tmp_path / "data"),
                          "--out", str(a_file / "x"))
    # Assert
    assert code == 2 and f"cannot write {a_file / 'x'}" in _one_line(err)
    assert "starting a SuperLink" not in out


@pytest.fixture(scope="module")
def extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    commands.synth(root, 200, ("espoo",), 3, 0.0)
    return root / "espoo" / "health_care.parquet"


def test_validation_report_and_docs_into_unwritable_paths_are_one_line(
        capsys: pytest.CaptureFixture[str], extract: Path, tmp_path: Path, a_file: Path) -> None:
    validate = ["node", "validate", "--sector", "health_care", "--data", str(extract)]
    cases = [(["--report", str(tmp_path)], f"cannot write {tmp_path}: it is a directory"),
             (["--report", str(a_file / "r.json")], f"cannot write {a_file / 'r.json'}: {a_file} is not a directory"),
             (["--docs", str(a_file)], f"cannot write {a_file}: it exists and is not a directory")]
    if Path("/dev/full").exists():
        cases.append((["--report", "/dev/full"], "cannot write /dev/full: no space left on device"))
    for extra, says in cases:
        code, _, err = _run(capsys, *validate, *extra)
        assert code == 2 and _one_line(err) == f"tillit: error: {says}\n"


@pytest.mark.parametrize("command", ["init", "start", "ledger"])
def test_a_node_state_directory_that_cannot_be_made_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                a_file: Path, command: str) -> None:
    # Prepare: a node config whose state directory would be under a regular file
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\ndataset = "espoo/health_care"\ncontract = "health_care"\n'
                      f'data = "{tmp_path / "x.parquet"}"\nstate_dir = "{a_file / "state"}"\n'
                      '[federation]\nsuperlink = "127.0.0.1:9092"\ninsecure = true\nport = 9094\n'
                      '[budget]\nepsilon = 3.0\ndelta = 1e-6\n'
                      f'[coordinator]\npublic_key = "{tmp_path / "c.pub"}"\n', encoding="utf-8")
    # Execute
    code, _, err = _run(capsys, "node", command, "--config", str(config))
    # Assert
    expected = f"tillit: error: cannot write {a_file / 'state'}: {a_file} is not a directory\n"
    assert code == 2 and _one_line(err) == expected


# -- coordinator serve -------------------------------------------------------------------------------------------

def test_serve_on_a_regular_file_is_one_line(capsys: pytest.CaptureFixture[str], a_file: Path) -> None:
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(a_file), "--port", str(free_port()))
    assert code == 2 and _one_line(err) == f"tillit: error: --state {a_file} is not a directory\n"


def test_serve_on_a_corrupt_database_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Prepare
    state = tmp_path / "state"
    state.mkdir()
    (state / "coordinator.sqlite").write_bytes(b"this is not an SQLite database " * 200)
    # Execute
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(state), "--port", str(free_port()))
    # Assert
    assert code == 2 and "cannot open the coordinator's state in" in _one_line(err)
    assert err.rstrip().endswith("file is not a database")


def test_serve_with_a_database_path_that_is_a_directory_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    (tmp_path / "state" / "coordinator.sqlite").mkdir(parents=True)
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(tmp_path / "state"), "--port", str(free_port()))
    assert code == 2 and "database" in _one_line(err)


def test_serve_on_a_port_in_use_is_one_line_before_anything_is_opened(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = _run(capsys, "coordinator", "serve", "--state", str(tmp_path / "state"), "--port", str(port))
    assert code == 2 and f"cannot serve on 127.0.0.1:{port}: address already in use" in _one_line(err)
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("url", ["nonsense", "mysql://root@db/tillit", "sqlite:////tmp/x\x00y"])
def test_serve_with_a_database_url_that_is_not_one_is_refused_by_the_parser(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str) -> None:
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(tmp_path), "--database-url", url)
    assert code == 2 and "argument --database-url" in _one_line(err)


def test_serve_on_a_state_directory_it_cannot_write_into_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    # Prepare: where the signing key's directory belongs, a file
    state = tmp_path / "state"
    state.mkdir()
    (state / "keys").write_text("not a directory\n", encoding="utf-8")
    # Execute
    code, _, err = _run(capsys, "coordinator", "serve", "--state", str(state), "--port", str(free_port()))
    # Assert
    assert code == 2 and "cannot open the coordinator's state in" in _one_line(err) and str(state / "keys") in err


@pytest.mark.skipif(os.geteuid() == 0 or shutil.which("chmod") is None, reason="root reads any directory")
def test_serve_on_an_unreadable_state_directory_is_one_line(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0)
    try:
        code, _, err = _run(capsys, "coordinator", "serve", "--state", str(state / "inner"), "--port",
                            str(free_port()))
    finally:
        state.chmod(0o700)
    assert code == 2 and "cannot open the coordinator's state" in _one_line(err)


# -- exit codes, and bugs ----------------------------------------------------------------------------------------

def _documented(text: str) -> set[int]:
    return {int(code) for code in re.findall(r"^\s*(\d+)\s", text, flags=re.MULTILINE)}


def test_help_and_readme_document_every_exit_code_of_the_error_tree() -> None:
    # Prepare: every exit code an expected failure can have, plus success and an interrupt
    tree = {cls.exit_code for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.TillitError)}
    # Execute
    in_help = _documented(EXIT_CODES)
    in_readme = {int(code) for code in re.findall(r"\*\*(\d+)\*\* ", README.read_text(encoding="utf-8"))}
    # Assert
    assert in_help == tree | {0, 130}
    assert tree | {0, 130} <= in_readme


def test_help_ends_with_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and capsys.readouterr().out.rstrip().endswith(EXIT_CODES.splitlines()[-1])


def test_a_malformed_command_line_is_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    for args in ([], ["budget", "set"], ["no-such-command"], ["synth", "--out"]):
        code, _, err = _run(capsys, *args)
        assert code == 2 and "--help" in _one_line(err)


def test_a_bug_still_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a command that fails in a way no one planned for
    def broken(dirs: list[Path]) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(commands, "contract_list", broken)
    # Execute / Assert: main does not swallow it
    with pytest.raises(RuntimeError, match="a bug"):
        main(["contract", "list"])
