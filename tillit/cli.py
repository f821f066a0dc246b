"""The ``tillit`` command: a thin façade that parses options once and calls the packages.

Expected failures (:class:`common.errors.TillitError`) become one ``tillit: error: ...`` line on
stderr and their exit code, here and nowhere else; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import TillitError, UsageError

if TYPE_CHECKING:
    from tillit.client import CoordinatorClient

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if not names or any(not n.replace("_", "").replace("-", "").isalnum() for n in names):
        raise argparse.ArgumentTypeError("expected comma-separated municipality names, e.g. espoo,vantaa")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("a municipality is named twice")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tillit", description="Privacy-preserving cross-sector data federation for municipalities.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="generate a synthetic municipality with known truth")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--residents", type=_positive_int, default=300_000, help="residents per municipality")
    synth.add_argument("--municipalities", type=_names, default=("espoo",), help="e.g. espoo,vantaa,helsinki")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--messiness", type=float, default=1.0,
                       help="scale of injected nulls and outliers (0 = clean)")

    node = sub.add_parser("node", help="commands a sector IT team runs on its node")
    node_sub = node.add_subparsers(dest="node_command", required=True, metavar="NODE_COMMAND")
    validate = node_sub.add_parser("validate", help="check an extract against its sector contract")
    validate.add_argument("--sector", required=True, help="contract name, e.g. health_care")
    validate.add_argument("--data", type=Path, required=True, help="the extract (Parquet or CSV)")
    validate.add_argument("--report", type=Path, help="write the JSON report here")
    validate.add_argument("--docs", type=Path, help="write Great Expectations Data Docs (offline HTML) here")
    validate.add_argument("--contracts", type=Path, action="append", default=[],
                          help="extra directory of contract files (repeatable; also $TILLIT_CONTRACTS_PATH)")
    validate.add_argument("--secret-file", type=Path,
                          help="node secret for pseudonyms (also $TILLIT_NODE_SECRET_FILE); "
                               "without one, a throw-away key is used")
    validate.add_argument("--encoding", default="utf-8", help="text encoding of a CSV extract")
    validate.add_argument("--delimiter", default=",", help="field separator of a CSV extract")
    init_secret = node_sub.add_parser("init-secret", help="create the node's secret (pseudonym key)")
    init_secret.add_argument("--out", type=Path, required=True)
    node_init = node_sub.add_parser("init", help="set up the node's state: secret, SuperNode key, budget, validation")
    node_init.add_argument("--config", type=Path, required=True, help="the node's TOML config")
    node_start = node_sub.add_parser("start", help="run this node's SuperNode (TLS and node authentication on)")
    node_start.add_argument("--config", type=Path, required=True)
    node_ledger = node_sub.add_parser("ledger", help="show the node's own privacy ledger")
    node_ledger.add_argument("--config", type=Path, required=True)

    federation = sub.add_parser("federation", help="run federated studies")
    fed_sub = federation.add_subparsers(dest="federation_command", required=True, metavar="FEDERATION_COMMAND")
    certs = fed_sub.add_parser("certs", help="make the federation's CA and the SuperLink's TLS certificate")
    certs.add_argument("--out", type=Path, required=True)
    certs.add_argument("--hosts", default="127.0.0.1,localhost", help="names and addresses of the SuperLink")
    certs.add_argument("--overwrite", action="store_true")
    link = fed_sub.add_parser("superlink", help="run the federation's SuperLink (TLS and node authentication on)")
    link.add_argument("--certs", type=Path, required=True, help="directory from 'tillit federation certs'")
    link.add_argument("--state", type=Path, required=True, help="directory for the SuperLink's database")
    link.add_argument("--host", default="0.0.0.0")
    link.add_argument("--port", type=int, default=9092)
    run = fed_sub.add_parser("run", help="run a study spec on this machine: SuperLink + one SuperNode per dataset")
    run.add_argument("--spec", type=Path, required=True, help="study spec (JSON)")
    run.add_argument("--data", type=Path, required=True, help="directory of <municipality>/<sector>.parquet silos")
    run.add_argument("--out", type=Path, default=Path("federation-out"))
    run.add_argument("--node-epsilon", type=float, default=3.0, help="each node's local budget cap (epsilon)")
    run.add_argument("--insecure", action="store_true", help="no TLS, no node authentication (trials only)")

    _coordinator_parsers(sub, node_sub)

    contract = sub.add_parser("contract", help="list, show and document data contracts")
    contract_sub = contract.add_subparsers(dest="contract_command", required=True, metavar="CONTRACT_COMMAND")
    for name, text in (("list", "list known contracts"), ("docs", "write Markdown documentation")):
        p = contract_sub.add_parser(name, help=text)
        p.add_argument("--contracts", type=Path, action="append", default=[])
        if name == "docs":
            p.add_argument("--out", type=Path, required=True)
    show = contract_sub.add_parser("show", help="show one contract and its checks")
    show.add_argument("name")
    show.add_argument("--contracts", type=Path, action="append", default=[])

    demo = sub.add_parser("demo", help="run the main job end to end on this machine")
    demo.add_argument("--out", type=Path, default=Path("demo-out"))
    demo.add_argument("--residents", type=_positive_int, default=300_000)
    demo.add_argument("--municipalities", type=_names, default=("espoo",))
    demo.add_argument("--seed", type=int, default=0)
    return parser


def _coordinator_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                         node_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--coordinator", default=None,
                        help="coordinator URL (also $TILLIT_COORDINATOR_URL; default http://127.0.0.1:8470)")
    client.add_argument("--token-file", type=Path, default=None,
                        help="file holding your token (also $TILLIT_TOKEN_FILE, or the token in $TILLIT_TOKEN)")

    coordinator = sub.add_parser("coordinator", help="run the coordinator service")
    coord_sub = coordinator.add_subparsers(dest="coordinator_command", required=True, metavar="COORDINATOR_COMMAND")
    serve = coord_sub.add_parser("serve", help="serve the coordinator's API, pages and register")
    serve.add_argument("--state", type=Path, required=True, help="state directory (database, keys, admin token)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None, help="default 8470")
    serve.add_argument("--database-url", default=None, help="e.g. postgresql+psycopg://user@host/tillit")
    serve.add_argument("--superlink", default=None, help="the SuperLink's HOST:PORT, to launch runs")
    serve.add_argument("--root-certificates", type=Path, default=None, help="the federation CA certificate")
    serve.add_argument("--superlink-insecure", action="store_true", default=None,
                       help="reach the SuperLink without TLS (trials only)")
    serve.add_argument("--results-dir", type=Path, default=None, help="where the ServerApp writes run results")
    serve.add_argument("--contracts", type=Path, action="append", default=[],
                       help="extra directory of contract files (repeatable; also $TILLIT_CONTRACTS_PATH)")

    principal = sub.add_parser("principal", help="admin: add and list principals (users and nodes)")
    principal_sub = principal.add_subparsers(dest="principal_command", required=True, metavar="PRINCIPAL_COMMAND")
    add = principal_sub.add_parser("add", parents=[client], help="add a principal and print its token once")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=["admin", "privacy_officer", "analyst", "node"])
    add.add_argument("--datasets", default="", help="comma-separated datasets an officer or node answers for")
    principal_sub.add_parser("list", parents=[client], help="list principals")

    enroll = node_sub.add_parser("enroll", parents=[client],
                                 help="enroll this node's dataset and key with the coordinator")
    enroll.add_argument("--config", type=Path, required=True)

    budget = sub.add_parser("budget", help="privacy officers: set and show budgets")
    budget_sub = budget.add_subparsers(dest="budget_command", required=True, metavar="BUDGET_COMMAND")
    for name, text in (("set", "set a dataset's budget for a data period"),
                       ("cap", "admin: cap a municipality's total per resident for a period")):
        b = budget_sub.add_parser(name, parents=[client], help=text)
        if name == "set":
            b.add_argument("--dataset", required=True, help="<municipality>/<sector>")
        else:
            b.add_argument("--municipality", required=True)
        b.add_argument("--period", required=True, help="data period, e.g. 2024")
        amount = b.add_mutually_exclusive_group(required=True)
        amount.add_argument("--epsilon", type=float)
        amount.add_argument("--rho", type=float)
        b.add_argument("--delta", type=float, default=1e-6)
    show = budget_sub.add_parser("show", parents=[client], help="budgets: cap, spent and remaining")
    show.add_argument("--dataset")
    show.add_argument("--period")

    ledger = sub.add_parser("ledger", help="the privacy ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True, metavar="LEDGER_COMMAND")
    ledger_show = ledger_sub.add_parser("show", parents=[client], help="every charge, and the balances")
    ledger_show.add_argument("--dataset")
    ledger_show.add_argument("--period")

    study = sub.add_parser("study", help="analysts and privacy officers: the study lifecycle")
    study_sub = study.add_subparsers(dest="study_command", required=True, metavar="STUDY_COMMAND")
    study_sub.add_parser("templates", parents=[client], help="list study templates and their parameters")
    create = study_sub.add_parser("create", parents=[client], help="draft a study from a template")
    create.add_argument("--id", required=True, help="study id, e.g. transitions-2024")
    create.add_argument("--name", required=True)
    create.add_argument("--template", required=True)
    create.add_argument("--params", required=True, help="template parameters: JSON, or @FILE")
    create.add_argument("--purpose", required=True)
    create.add_argument("--legal-basis", required=True)
    create.add_argument("--organisation", required=True)
    create.add_argument("--contact", required=True)
    create.add_argument("--period", required=True)
    create.add_argument("--preview", action="store_true", help="only show the cost; save nothing")
    for name, text in (("cost", "cost per dataset and what each budget has left"),
                       ("approve", "approve for the datasets you answer for"),
                       ("reject", "reject for the datasets you answer for"),
                       ("run", "launch an approved study on the federation"),
                       ("results", "the released result (JSON on stdout, or files with --out DIR)")):
        p = study_sub.add_parser(name, parents=[client], help=text)
        p.add_argument("study_id")
        if name in ("approve", "reject"):
            p.add_argument("--reason", required=True)
        if name == "run":
            p.add_argument("--wait", action="store_true", help="follow progress until released or failed")
            p.add_argument("--timeout", type=float, default=3600)
        if name == "results":
            p.add_argument("--out", type=Path, help="write result.json, CSV tables and report.html into this directory")
    status = study_sub.add_parser("status", parents=[client], help="one study's status, or all studies")
    status.add_argument("study_id", nargs="?")

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="AUDIT_COMMAND")
    verify = audit_sub.add_parser("verify", help="check the hash chain and signatures; name each tampered entry")
    verify.add_argument("--state", type=Path, required=True, help="the coordinator's state directory")
    verify.add_argument("--database-url", default=None)


def _client(args: argparse.Namespace) -> CoordinatorClient:
    from tillit.client import CoordinatorClient

    url = args.coordinator or os.environ.get("TILLIT_COORDINATOR_URL") or "http://127.0.0.1:8470"
    token_file = args.token_file or (Path(p) if (p := os.environ.get("TILLIT_TOKEN_FILE")) else None)
    if token_file is not None:
        try:
            token: str | None = token_file.read_text(encoding="utf-8").strip()
        except OSError:
            raise UsageError(f"cannot read the token file {token_file}") from None
    else:
        token = os.environ.get("TILLIT_TOKEN")
    return CoordinatorClient(url, token)


def _dispatch_coordinator(args: argparse.Namespace) -> int | None:
    from tillit import coordinator_commands as cc

    command = args.command
    if command == "coordinator":
        return cc.serve({"state_dir": args.state, "host": args.host, "port": args.port,
                         "database_url": args.database_url, "superlink": args.superlink,
                         "root_certificates": args.root_certificates, "superlink_insecure": args.superlink_insecure,
                         "results_dir": args.results_dir, "contracts_dirs": tuple(_contract_dirs(args.contracts))})
    if command == "audit":
        return cc.audit_verify(args.state, args.database_url)
    if command == "node" and args.node_command == "enroll":
        return cc.node_enroll(_client(args), args.config)
    if command not in ("principal", "budget", "ledger", "study"):
        return None
    client = _client(args)
    if command == "principal":
        if args.principal_command == "add":
            datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
            return cc.principal_add(client, args.name, args.role, datasets)
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
    from_env = [Path(p) for p in os.environ.get("TILLIT_CONTRACTS_PATH", "").split(os.pathsep) if p]
    return [*from_env, *explicit]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except TillitError as error:
        print(f"tillit: error: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("tillit: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from tillit import commands

    handled = _dispatch_coordinator(args)
    if handled is not None:
        return handled
    if args.command == "synth":
        return commands.synth(args.out, args.residents, args.municipalities, args.seed, args.messiness)
    if args.command == "node" and args.node_command == "validate":
        secret_file = args.secret_file or (Path(p) if (p := os.environ.get("TILLIT_NODE_SECRET_FILE")) else None)
        return commands.node_validate(
            sector=args.sector, data=args.data, report=args.report, docs=args.docs,
            contract_dirs=_contract_dirs(args.contracts), secret_file=secret_file,
            encoding=args.encoding, delimiter=_delimiter(args.delimiter),
        )
    if args.command == "node" and args.node_command == "init-secret":
        return commands.node_init_secret(args.out)
    if args.command == "node" and args.node_command == "init":
        return commands.node_init(args.config)
    if args.command == "node" and args.node_command == "start":
        return commands.node_start(args.config)
    if args.command == "node" and args.node_command == "ledger":
        return commands.node_ledger(args.config)
    if args.command == "federation" and args.federation_command == "certs":
        hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
        return commands.federation_certs(args.out, hosts, args.overwrite)
    if args.command == "federation" and args.federation_command == "superlink":
        return commands.federation_superlink(args.certs, args.state, args.host, args.port)
    if args.command == "federation" and args.federation_command == "run":
        return commands.federation_run(args.spec, args.data, args.out, args.node_epsilon, args.insecure)
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
        raise UsageError(f"--delimiter must be one character, got {text!r}")
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
