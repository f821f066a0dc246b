"""The ``tillit`` command: a thin façade that parses options once and calls the packages.

Expected failures (:class:`common.errors.TillitError`, and a malformed command line) become one
``tillit: error: ...`` line on stderr and their exit code (:data:`EXIT_CODES`), here and nowhere else;
anything else is a bug and keeps its traceback. Every option has a checking type (:mod:`tillit.arguments`),
so a value is refused before any work starts, and every file a command writes goes through
:func:`tillit.outputs.writing`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from common.errors import TillitError, UsageError
from tillit import arguments as arg

if TYPE_CHECKING:
    from tillit.client import CoordinatorClient

__all__ = ["main"]

T = TypeVar("T")

#: what ``tillit --help`` ends with; the same table is in the README and in :mod:`common.errors`
EXIT_CODES = """exit codes:
  0  done
  1  the data break their contract, or another failure (only a bug also prints a traceback)
  2  bad input: an option, file or setting, or a request the coordinator refused as invalid
  3  refused: a conflict with the current state, a privacy budget, a study refused or failed
  4  not found: no such study, dataset, principal or result
  5  not authenticated (no or unknown token) or forbidden (role or scope)
  6  a service or process is unavailable: the coordinator, the SuperLink, a Flower process
130  interrupted
Every expected failure is one 'tillit: error: ...' line on stderr."""

#: residents per synthetic municipality: enough for every silo to have rows; more than any Nordic municipality has
_MAX_RESIDENTS = 2_000_000
_residents = arg.whole(100, _MAX_RESIDENTS)
#: a contract, template or role name: one line, short
_name = arg.text(200, what="the name", single_line=True)
#: ε or ρ: finite and positive (the coordinator checks its own range and answers 422 outside it)
_privacy_amount = arg.finite(0, 1e6, low_open=True)


class _Parser(argparse.ArgumentParser):
    """argparse, except that a malformed command line is one ``tillit: error: ...`` line and exit 2 like
    every other expected failure (``--help`` says the rest)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{' '.join(message.split())[:500]} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tillit", description="Privacy-preserving cross-sector data federation for municipalities.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="generate a synthetic municipality with known truth")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--residents", type=_residents, default=300_000, help="residents per municipality")
    synth.add_argument("--municipalities", type=arg.municipalities, default=("espoo",),
                       help="e.g. espoo,vantaa,helsinki")
    synth.add_argument("--seed", type=arg.seed, default=0)
    synth.add_argument("--messiness", type=arg.finite(0, 100), default=1.0,
                       help="scale of injected nulls and outliers (0 = clean)")
    synth.add_argument("--country", type=arg.country, default="fi",
                       help="whose identity codes the residents get: fi, se, no, dk or is (default fi; other than fi, "
                            "the sector contracts with that identifier are written to OUT/contracts)")

    node = sub.add_parser("node", help="commands a sector IT team runs on its node")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")
    validate = node_sub.add_parser("validate", help="check an extract against its sector contract")
    validate.add_argument("--sector", type=_name, required=True, help="contract name, e.g. health_care")
    validate.add_argument("--data", type=Path, required=True, help="the extract (Parquet or CSV)")
    validate.add_argument("--report", type=Path, help="write the JSON report here")
    validate.add_argument("--docs", type=Path, help="write Great Expectations Data Docs (offline HTML) here")
    _add_contracts(validate)
    validate.add_argument("--secret-file", type=Path,
                          help="node secret for pseudonyms (also $TILLIT_NODE_SECRET_FILE); "
                               "without one, a throw-away key is used")
    validate.add_argument("--encoding", type=arg.text(64, what="the encoding", single_line=True), default="utf-8",
                          help="text encoding of a CSV extract")
    validate.add_argument("--delimiter", type=arg.text(8, what="the delimiter"), default=",",
                          help="field separator of a CSV extract")
    init_secret = node_sub.add_parser("init-secret", help="create the node's secret (pseudonym key)")
    init_secret.add_argument("--out", type=Path, required=True)
    node_init = node_sub.add_parser("init", help="set up the node's state: secret, SuperNode key, budget, validation")
    node_init.add_argument("--config", type=Path, required=True, help="the node's TOML config")
    node_start = node_sub.add_parser("start", help="run this node's SuperNode (TLS and node authentication on)")
    node_start.add_argument("--config", type=Path, required=True)
    node_ledger = node_sub.add_parser("ledger", help="show the node's own privacy ledger")
    node_ledger.add_argument("--config", type=Path, required=True)
    for with_config in (node_init, node_start, node_ledger):
        _add_contracts(with_config, "besides the config's [node] contracts_dirs")

    federation = sub.add_parser("federation", help="run federated studies")
    fed_sub = federation.add_subparsers(dest="federation_command", required=True, metavar="FEDERATION_COMMAND")
    certs = fed_sub.add_parser("certs", help="make the federation's CA and the SuperLink's TLS certificate")
    certs.add_argument("--out", type=Path, required=True)
    certs.add_argument("--hosts", type=arg.hosts, default="127.0.0.1,localhost",
                       help="names and addresses of the SuperLink")
    certs.add_argument("--overwrite", action="store_true")
    link = fed_sub.add_parser("superlink", help="run the federation's SuperLink (TLS and node authentication on)")
    link.add_argument("--certs", type=Path, required=True, help="directory from 'tillit federation certs'")
    link.add_argument("--state", type=Path, required=True, help="directory for the SuperLink's database")
    link.add_argument("--host", type=arg.host, default="0.0.0.0")
    link.add_argument("--port", type=arg.whole(1, 65_535, what="a TCP port"), default=9092)
    run = fed_sub.add_parser("run", help="run a study spec on this machine: SuperLink + one SuperNode per dataset")
    run.add_argument("--spec", type=Path, required=True, help="study spec (JSON)")
    run.add_argument("--data", type=Path, required=True, help="directory of <municipality>/<sector>.parquet silos")
    run.add_argument("--out", type=Path, default=Path("federation-out"))
    run.add_argument("--node-epsilon", type=arg.finite(0, 100, low_open=True), default=3.0,
                     help="each node's local budget cap (epsilon)")
    run.add_argument("--insecure", action="store_true", help="no TLS, no node authentication (trials only)")
    _add_contracts(run, "given to every node and the ServerApp; checked before anything starts")

    _coordinator_parsers(sub, node_sub)

    contract = sub.add_parser("contract", help="list, show and document data contracts")
    contract_sub = contract.add_subparsers(dest="contract_command", required=True, metavar="CONTRACT_COMMAND")
    for name, text in (("list", "list known contracts"), ("docs", "write Markdown documentation")):
        p = contract_sub.add_parser(name, help=text)
        _add_contracts(p)
        if name == "docs":
            p.add_argument("--out", type=Path, required=True)
    show = contract_sub.add_parser("show", help="show one contract and its checks")
    show.add_argument("name", type=_name)
    _add_contracts(show)

    demo = sub.add_parser("demo", help="run the main job end to end on this machine")
    demo.add_argument("--out", type=Path, default=Path("demo-out"))
    demo.add_argument("--residents", type=_residents, default=300_000)
    demo.add_argument("--municipalities", type=arg.municipalities, default=("espoo",))
    demo.add_argument("--seed", type=arg.seed, default=0)
    _validate_every_value(parser)
    return parser


def _add_contracts(parser: argparse.ArgumentParser, where: str = "") -> None:
    """``--contracts DIR``, the same on every command that reads contracts (:func:`_contract_dirs` adds the
    environment's)."""
    parser.add_argument("--contracts", type=arg.path, action="append", default=[], metavar="DIR",
                        help="a directory of your team's contract files (repeatable; also $TILLIT_CONTRACTS_PATH, "
                             f"'{os.pathsep}'-separated){'; ' + where if where else ''}")


def _validate_every_value(parser: argparse.ArgumentParser) -> None:
    """Give every option still typed ``Path``, ``int``, ``float`` or plain text a checking type, so that an
    option added without one is still checked at the edge (UTF-8 without NUL, finite, of a sane length)."""
    generic: dict[object, object] = {Path: arg.path, int: arg.whole(-2**63, 2**63 - 1), float: arg.finite(-1e15, 1e15),
                                     None: arg.text()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _validate_every_value(child)
        elif action.nargs != 0 and action.type in generic:
            action.type = generic[action.type]  # type: ignore[assignment]


def _coordinator_parsers(sub: argparse._SubParsersAction[_Parser],
                         node_sub: argparse._SubParsersAction[_Parser]) -> None:
    client = _Parser(add_help=False)
    client.add_argument("--coordinator", type=arg.coordinator_url, default=None,
                        help="coordinator URL (also $TILLIT_COORDINATOR_URL; default http://127.0.0.1:8470)")
    client.add_argument("--token-file", type=Path, default=None,
                        help="file holding your token (also $TILLIT_TOKEN_FILE, or the token in $TILLIT_TOKEN)")

    coordinator = sub.add_parser("coordinator", help="run the coordinator service")
    coord_sub = coordinator.add_subparsers(dest="coordinator_command", required=True, metavar="COORDINATOR_COMMAND")
    serve = coord_sub.add_parser("serve", help="serve the coordinator's API, pages and register")
    serve.add_argument("--state", type=Path, required=True, help="state directory (database, keys, admin token)")
    serve.add_argument("--host", type=arg.host, default=None)
    serve.add_argument("--port", type=arg.port, default=None, help="default 8470")
    serve.add_argument("--database-url", type=arg.database_url, default=None,
                       help="e.g. postgresql+psycopg://user@host/tillit")
    serve.add_argument("--superlink", type=arg.address, default=None, help="the SuperLink's HOST:PORT, to launch runs")
    serve.add_argument("--root-certificates", type=Path, default=None, help="the federation CA certificate")
    serve.add_argument("--superlink-insecure", action="store_true", default=None,
                       help="reach the SuperLink without TLS (trials only)")
    serve.add_argument("--results-dir", type=Path, default=None, help="where the ServerApp writes run results")
    _add_contracts(serve, "checked before the coordinator opens its state")
    serve.add_argument("--signing-key", type=Path, default=None,
                       help="the study-signing key, kept outside the state directory (made if missing; also "
                            "$TILLIT_COORDINATOR_SIGNING_KEY; default STATE/keys/study-signing.key)")

    principal = sub.add_parser("principal", help="admin: add, list and revoke principals (users and nodes)")
    principal_sub = principal.add_subparsers(dest="principal_command", required=True, metavar="PRINCIPAL_COMMAND")
    add = principal_sub.add_parser("add", parents=[client], help="add a principal and print its token once")
    add.add_argument("--name", type=arg.segment, required=True)
    add.add_argument("--role", type=_name, required=True, choices=["admin", "privacy_officer", "analyst", "node"])
    add.add_argument("--datasets", type=arg.datasets, default="",
                     help="comma-separated datasets an officer or node answers for")
    principal_sub.add_parser("list", parents=[client], help="list principals")
    revoke = principal_sub.add_parser("revoke", parents=[client],
                                      help="revoke a principal's token for good (every route answers it 401)")
    revoke.add_argument("name")

    enroll = node_sub.add_parser("enroll", parents=[client],
                                 help="enroll this node's dataset and key with the coordinator")
    enroll.add_argument("--config", type=Path, required=True)
    _add_contracts(enroll, "besides the config's [node] contracts_dirs")

    budget = sub.add_parser("budget", help="privacy officers: set and show budgets")
    budget_sub = budget.add_subparsers(dest="budget_command", required=True, metavar="BUDGET_COMMAND")
    for name, text in (("set", "set a dataset's budget for a data period"),
                       ("cap", "admin: cap a municipality's total per resident for a period")):
        b = budget_sub.add_parser(name, parents=[client], help=text)
        if name == "set":
            b.add_argument("--dataset", type=arg.dataset, required=True, help="<municipality>/<sector>")
        else:
            b.add_argument("--municipality", type=arg.segment, required=True)
        b.add_argument("--period", type=arg.segment, required=True, help="data period, e.g. 2024")
        amount = b.add_mutually_exclusive_group(required=True)
        amount.add_argument("--epsilon", type=_privacy_amount)
        amount.add_argument("--rho", type=_privacy_amount)
        b.add_argument("--delta", type=arg.finite(0, 1, low_open=True, high_open=True), default=1e-6)
    show = budget_sub.add_parser("show", parents=[client], help="budgets: cap, spent and remaining")
    show.add_argument("--dataset", type=arg.dataset)
    show.add_argument("--period", type=arg.segment)

    ledger = sub.add_parser("ledger", help="the privacy ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="LEDGER_COMMAND")
    ledger_show = ledger_sub.add_parser("show", parents=[client], help="every charge, and the balances")
    ledger_show.add_argument("--dataset", type=arg.dataset)
    ledger_show.add_argument("--period", type=arg.segment)

    study = sub.add_parser("study", help="analysts and privacy officers: the study lifecycle")
    study_sub = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")
    study_sub.add_parser("templates", parents=[client], help="list study templates and their parameters")
    create = study_sub.add_parser("create", parents=[client], help="draft a study from a template")
    create.add_argument("--id", type=arg.segment, required=True, help="study id, e.g. transitions-2024")
    create.add_argument("--name", required=True)
    create.add_argument("--template", type=arg.segment, required=True)
    create.add_argument("--params", type=arg.text(arg.MAX_PARAMS_CHARS, what="--params"), required=True,
                        help="template parameters: JSON, or @FILE")
    create.add_argument("--purpose", required=True)
    create.add_argument("--legal-basis", required=True)
    create.add_argument("--organisation", required=True)
    create.add_argument("--contact", required=True)
    create.add_argument("--period", type=arg.segment, required=True)
    create.add_argument("--preview", action="store_true", help="only show the cost; save nothing")
    for name, text in (("cost", "cost per dataset and what each budget has left"),
                       ("approve", "approve for the datasets you answer for"),
                       ("reject", "reject for the datasets you answer for"),
                       ("run", "launch an approved study on the federation"),
                       ("results", "the released result (JSON on stdout, or files with --out DIR)")):
        p = study_sub.add_parser(name, parents=[client], help=text)
        p.add_argument("study_id", type=arg.segment)
        if name in ("approve", "reject"):
            p.add_argument("--reason", required=True)
        if name == "run":
            p.add_argument("--wait", action="store_true", help="follow progress until released or failed")
            p.add_argument("--timeout", type=arg.finite(0, 30 * 86_400, low_open=True), default=3600,
                           help="seconds to follow the study (default 3600)")
        if name == "results":
            p.add_argument("--out", type=Path, help="write result.json, CSV tables and report.html into this directory")
    status = study_sub.add_parser("status", parents=[client], help="one study's status, or all studies")
    status.add_argument("study_id", type=arg.segment, nargs="?")

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    verify = audit_sub.add_parser("verify", help="check the hash chain and signatures, recompute the ledger, "
                                                 "budgets, principals and studies from it; name each tampered "
                                                 "entry and row")
    verify.add_argument("--state", type=Path, required=True, help="the coordinator's state directory")
    verify.add_argument("--database-url", type=arg.database_url, default=None)
    verify.add_argument("--public-key", type=Path, default=None,
                        help="the coordinator's public key, kept where the state directory's writers cannot "
                             "change it (default STATE/keys/study-signing.pub)")
    verify.add_argument("--anchor", action="append", default=[], metavar="SEQ:HASH",
                        help="an audit anchor kept outside the database: one a node recorded "
                             "('tillit node ledger') or the register's audit_head (repeatable)")


def _client(args: argparse.Namespace) -> CoordinatorClient:
    from tillit.client import CoordinatorClient, check_token, read_token_file

    url = args.coordinator or _from_env("TILLIT_COORDINATOR_URL", arg.coordinator_url) or "http://127.0.0.1:8470"
    token_file = args.token_file or _from_env("TILLIT_TOKEN_FILE", arg.path)
    token: str | None = None
    if token_file is not None:
        token = read_token_file(token_file)
    elif from_env := os.environ.get("TILLIT_TOKEN", "").strip():
        token = check_token(from_env, "$TILLIT_TOKEN")
    return CoordinatorClient(url, token)


def _checked_env_path(name: str, value: str) -> Path:
    try:
        return arg.path(value)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"${name}: {error}") from None


def _from_env(name: str, parse: Callable[[str], T]) -> T | None:
    """An environment variable, checked by the same type as the option it stands in for."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return parse(value)
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"${name}: {error}") from None


def _dispatch_coordinator(args: argparse.Namespace) -> int | None:
    from tillit import coordinator_commands as cc

    command = args.command
    if command == "coordinator":
        return cc.serve({"state_dir": args.state, "host": args.host, "port": args.port,
                         "database_url": args.database_url, "superlink": args.superlink,
                         "root_certificates": args.root_certificates, "superlink_insecure": args.superlink_insecure,
                         "results_dir": args.results_dir, "contracts_dirs": tuple(_contract_dirs(args.contracts)),
                         "signing_key": args.signing_key})
    if command == "audit":
        return cc.audit_verify(args.state, args.database_url, args.public_key, args.anchor)
    if command == "node" and args.node_command == "enroll":
        return cc.node_enroll(_client(args), args.config, _contract_dirs(args.contracts))
    if command not in ("principal", "budget", "ledger", "study"):
        return None
    client = _client(args)
    if command == "principal":
        if args.principal_command == "add":
            return cc.principal_add(client, args.name, args.role, list(args.datasets))
        if args.principal_command == "revoke":
            return cc.principal_revoke(client, args.name)
        return cc.principal_list(client)
    if command == "budget":
        if args.budget_command == "set":
            return cc.budget_set(client, args.dataset, args.period, args.epsilon, args.rho, args.delta)
        if args.budget_command == "cap":
            return cc.budget_cap(client, args.municipality, args.period, args.epsilon, args.rho, args.delta)
        return cc.budget_show(client, args.dataset, args.period)
    if command == "ledger":
        return cc.ledger_show(client, args.dataset, args.period)
    sc = args.study_command
    if sc == "templates":
        return cc.study_templates(client)
    if sc == "create":
        options = {"id": args.id, "name": args.name, "template": args.template, "params": args.params,
                   "purpose": args.purpose, "legal_basis": args.legal_basis, "organisation": args.organisation,
                   "contact": args.contact, "period": args.period}
        return cc.study_create(client, options, args.preview)
    if sc == "cost":
        return cc.study_cost(client, args.study_id)
    if sc in ("approve", "reject"):
        return cc.study_decide(client, args.study_id, sc, args.reason)
    if sc == "run":
        return cc.study_run(client, args.study_id, args.wait, args.timeout)
    if sc == "status":
        return cc.study_status(client, args.study_id)
    return cc.study_results(client, args.study_id, args.out)


def _contract_dirs(explicit: list[Path]) -> list[Path]:
    """``$TILLIT_CONTRACTS_PATH``'s directories, then those given with ``--contracts``; each directory once."""
    from_env = [_checked_env_path("TILLIT_CONTRACTS_PATH", p)
                for p in os.environ.get("TILLIT_CONTRACTS_PATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys([*from_env, *explicit]))


def main(argv: Sequence[str] | None = None) -> int:
    from tillit.signals import Terminated, stop_on_signals

    try:
        # SIGTERM and SIGINT unwind the command like an error: every process it started is stopped by PID
        with stop_on_signals():
            return _dispatch(_parser().parse_args(argv))
    except TillitError as error:
        print(f"tillit: error: {' '.join(error.message.splitlines())}", file=sys.stderr)
        return error.exit_code
    except Terminated as stopped:
        print(f"tillit: stopped ({stopped}); every process it started was stopped", file=sys.stderr)
        return stopped.exit_code
    except KeyboardInterrupt:
        print("tillit: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from tillit import commands

    handled = _dispatch_coordinator(args)
    if handled is not None:
        return handled
    if args.command == "synth":
        return commands.synth(args.out, args.residents, args.municipalities, args.seed, args.messiness, args.country)
    if args.command == "node" and args.node_command == "validate":
        secret_file = args.secret_file or _from_env("TILLIT_NODE_SECRET_FILE", arg.path)
        return commands.node_validate(
            sector=args.sector, data=args.data, report=args.report, docs=args.docs,
            contract_dirs=_contract_dirs(args.contracts), secret_file=secret_file,
            encoding=args.encoding, delimiter=_delimiter(args.delimiter),
        )
    if args.command == "node" and args.node_command == "init-secret":
        return commands.node_init_secret(args.out)
    if args.command == "node" and args.node_command == "init":
        return commands.node_init(args.config, _contract_dirs(args.contracts))
    if args.command == "node" and args.node_command == "start":
        return commands.node_start(args.config, _contract_dirs(args.contracts))
    if args.command == "node" and args.node_command == "ledger":
        return commands.node_ledger(args.config, _contract_dirs(args.contracts))
    if args.command == "federation" and args.federation_command == "certs":
        return commands.federation_certs(args.out, list(args.hosts), args.overwrite)
    if args.command == "federation" and args.federation_command == "superlink":
        return commands.federation_superlink(args.certs, args.state, args.host, args.port)
    if args.command == "federation" and args.federation_command == "run":
        return commands.federation_run(args.spec, args.data, args.out, args.node_epsilon, args.insecure,
                                       _contract_dirs(args.contracts))
    if args.command == "contract":
        dirs = _contract_dirs(args.contracts)
        if args.contract_command == "list":
            return commands.contract_list(dirs)
        if args.contract_command == "show":
            return commands.contract_show(args.name, dirs)
        return commands.contract_docs(args.out, dirs)
    if args.command == "demo":
        return commands.demo(args.out, args.residents, args.municipalities, args.seed)
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse guards this


def _delimiter(text: str) -> str:
    value = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(value) != 1:
        raise UsageError(f"--delimiter must be one character (or \\t), got {len(value)}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
