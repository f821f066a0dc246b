"""Fuzz every ``tillit`` command's arguments: ``main`` never raises and never prints a traceback.

Argument lists are built from the real parser: each leaf command, each of its options and positionals,
with values from text, binary-ish (undecodable bytes as the OS hands them over), unicode, huge-number, NaN and
plausible strategies, and file options pointed at temporary paths (missing, a directory, text, binary, a path
under a regular file). Coordinator commands talk to ``http://127.0.0.1:9``, where nothing answers. The three
commands that would run for good when their arguments are right — serving the coordinator, running a Flower
process and the demo — are stubbed; everything before them runs.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tillit.demo
from tillit import arguments
from tillit.cli import _parser, main

NOWHERE = "http://127.0.0.1:9"
DOCUMENTED_EXITS = {0, 1, 2, 3, 4, 5, 6, 130}
FILES = ("missing", "dir", "text", "binary", "latin", "token", "json", "toml", "under-a-file", "/dev/null")


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                          argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _leaves(child, (*path, name))
            return
    yield path, parser


COMMANDS = dict(_leaves(_parser()))

_binaryish = st.binary(min_size=1, max_size=40).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
_numbers = st.one_of(
    st.integers(-10, 120).map(str), st.integers(10**7, 10**40).map(str), st.just("9" * 5000),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-0", "0x10", "1_000", "", " 1 ", "1e-320"]),
)
_plausible = st.sampled_from([
    "espoo/health_care", "espoo", "health_care", "2024", "2031?x=1", "../caps", ".", "..", "transitions-2024",
    '{"municipalities": ["espoo"], "epsilon": 1}', "@/dev/null", "127.0.0.1", "localhost", "127.0.0.1:9092",
    "admin", "analyst", "utf-8", ";", "\\t", "espoo,vantaa", "x" * 15_000, "a\r\nb", "a\x00b",
])
VALUES = st.one_of(st.text(max_size=60), _binaryish, st.text(st.characters(min_codepoint=0x80), max_size=20),
                   _numbers, _plausible)


#: a value each option takes when it is right, so that an example with one bad value gets past the others
PLAUSIBLE = {
    "dataset": "espoo/health_care", "datasets": "espoo/health_care", "period": "2024", "municipality": "espoo",
    "municipalities": "espoo,vantaa", "sector": "health_care", "study_id": "transitions-2024", "id": "t-2024",
    "name": "officer-1", "role": "analyst", "template": "health_transitions", "epsilon": "1", "rho": "0.01",
    "delta": "1e-6", "node_epsilon": "1", "timeout": "0.5", "residents": "100", "seed": "1", "messiness": "0.5",
    "hosts": "127.0.0.1,localhost", "host": "127.0.0.1", "port": "0", "superlink": "127.0.0.1:9092",
    "encoding": "utf-8", "delimiter": ";", "reason": "fits the plan", "purpose": "Plan services for a decade",
    "legal_basis": "Act 552/2019", "organisation": "City of Espoo", "contact": "planning@espoo.example",
    "params": '{"municipalities": ["espoo"], "epsilon": 1}', "anchor": "1:" + "0" * 64,
}


def _files(root: Path) -> dict[str, Path]:
    """Fresh temporary paths of every kind a file option may be given."""
    (root / "dir").mkdir()
    (root / "text").write_text("hello\n", encoding="utf-8")
    (root / "binary").write_bytes(bytes(range(256)))
    (root / "latin").write_bytes("tökenä".encode("latin-1"))
    (root / "token").write_text("tlt_0123456789abcdef\n", encoding="utf-8")
    (root / "json").write_text('{"study_id": "x"}', encoding="utf-8")
    (root / "toml").write_text('[node]\ndataset = "espoo/health_care"\n', encoding="utf-8")
    paths = {name: root / name for name in FILES if not name.startswith("/")}
    paths["missing"] = root / "missing" / "out"
    paths["under-a-file"] = root / "text" / "x"
    paths["/dev/null"] = Path("/dev/null")
    return paths


def _contained(value: str) -> str:
    """A fuzzed path kept inside the example's directory (the working directory): relative, no ``..``."""
    return "/".join("_" if part == ".." else part for part in value.split("/")).lstrip("/") or "_"


def _takes_a_path(action: argparse.Action) -> bool:
    return action.type is arguments.path


def _argv(data: st.DataObject, command: tuple[str, ...], parser: argparse.ArgumentParser,
          files: dict[str, Path]) -> list[str]:
    argv = list(command)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        required = action.required or (not action.option_strings and action.nargs != "?")
        if not required and not data.draw(st.booleans(), label=f"use {action.dest}"):
            continue
        if action.nargs == 0:
            argv.append(action.option_strings[0])
            continue
        plausible = data.draw(st.integers(0, 9), label=f"{action.dest} plausible") < 7
        if action.dest == "coordinator" and plausible:
            value = NOWHERE
        elif action.dest == "database_url" and plausible:
            value = f"sqlite:///{files['dir'] / 'db.sqlite'}"
        elif action.dest in PLAUSIBLE and plausible:
            value = PLAUSIBLE[action.dest]
        elif _takes_a_path(action) or action.dest == "token_file" or (
                action.dest == "params" and data.draw(st.booleans(), label="params from a file")):
            kind = data.draw(st.sampled_from((*FILES, "garbage")), label=f"{action.dest} kind")
            value = str(files[kind]) if kind != "garbage" else _contained(data.draw(VALUES, label=action.dest))
            if action.dest == "params":
                value = "@" + value
        else:
            value = data.draw(VALUES, label=action.dest)
        argv.append(f"{action.option_strings[-1]}={value}" if action.option_strings else value)
    return argv


@pytest.fixture
def _long_runners_stubbed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What would run for good (serve, a Flower process, the demo) records that it was reached instead."""
    reached: list[str] = []

    def record(name: str, answer: Any) -> Any:
        def stub(*args: object, **kwargs: object) -> Any:
            reached.append(name)
            return answer
        return stub

    monkeypatch.setattr(uvicorn, "run", record("uvicorn.run", None))
    monkeypatch.setattr(subprocess, "call", record("subprocess.call", 0))
    monkeypatch.setattr(tillit.demo, "run_demo", record("run_demo", {"studies": {}, "ledger": {"balances": []},
                                                                     "seconds": {}}))
    for name in ("TILLIT_COORDINATOR_URL", "TILLIT_TOKEN", "TILLIT_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return reached


def test_every_command_is_fuzzed() -> None:
    # the parser's leaves are what the fuzz covers: every role's commands are among them
    names = {" ".join(command) for command in COMMANDS}
    assert len(names) >= 30 and {"synth", "budget set", "study create", "coordinator serve", "demo"} <= names


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_main_never_raises_and_never_prints_a_traceback(command: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                                                       _long_runners_stubbed: list[str]) -> None:
    parser = COMMANDS[command]

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def exercise(data: st.DataObject) -> None:
        # each example in its own directory, which is also the working directory: a value taken as a relative
        # path (``--out 1e999``) is written there and removed with it
        with tempfile.TemporaryDirectory() as root, contextlib.chdir(root):
            # Prepare
            argv = _argv(data, command, parser, _files(Path(root)))
            # Execute
            try:
                code = main(argv)
            except SystemExit as done:  # argparse's own exit: --help (0); a malformed command line (2)
                code = int(done.code or 0)
                assert code in (0, 2)
            captured = capsys.readouterr()
            # Assert
            assert "Traceback" not in captured.err and "Traceback" not in captured.out, argv
            assert code in DOCUMENTED_EXITS, (code, argv)
            if code != 0:
                assert captured.err.count("tillit: error: ") == 1 and captured.err.endswith("\n"), (argv, captured.err)

    exercise()
