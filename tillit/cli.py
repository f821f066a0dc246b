"""The ``tillit`` command: a thin façade that parses options once and calls the packages.

Expected failures (:class:`tillit.errors.TillitError`) become one ``tillit: error: ...`` line on
stderr and their exit code, here and nowhere else; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tillit.errors import TillitError, UsageError

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
