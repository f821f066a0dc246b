"""What each CLI command does, with typed arguments already parsed by :mod:`tillit.cli`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import ContractViolation, UsageError
from tillit.outputs import writing

if TYPE_CHECKING:
    from schemas import ContractCatalog


def synth(out: Path, residents: int, municipalities: tuple[str, ...], seed: int, messiness: float,
          country: str = "fi") -> int:
    from schemas.synth import COUNTRIES, SynthConfig, synthesize

    if country not in COUNTRIES:
        raise UsageError(f"--country must be one of {', '.join(COUNTRIES)}")
    with writing(dirs=[out]):
        result = synthesize(SynthConfig(out=out, residents=residents, municipalities=municipalities,
                                        seed=seed, messiness=messiness, country=country))
    for municipality, rows in result.rows.items():
        listed = ", ".join(f"{sector} {count:,}" for sector, count in rows.items())
        print(f"{municipality}: {listed}")
    print(f"wrote {out}/<municipality>/<sector>.parquet and {result.truth_path} in {result.seconds:.1f} s")
    if result.contracts_dir is not None:
        print(f"the extracts carry {country} identity codes: their contracts are in {result.contracts_dir}; pass "
              f"--contracts {result.contracts_dir} (or set TILLIT_CONTRACTS_PATH={result.contracts_dir}) to every "
              "command that reads them, e.g. tillit node validate --sector population_register "
              f"--data {out}/{municipalities[0]}/population_register.parquet --contracts {result.contracts_dir}")
    return 0


def _registry(dirs: list[Path]) -> ContractCatalog:
    from schemas import ContractCatalog

    return ContractCatalog(extra_dirs=dirs)


def node_validate(*, sector: str, data: Path, report: Path | None, docs: Path | None,
                  contract_dirs: list[Path], secret_file: Path | None, encoding: str, delimiter: str) -> int:
    from nodes.secret import ephemeral_secret, load_secret
    from nodes.validate import ValidateRequest, validate_extract

    contract = _registry(contract_dirs).get(sector)
    secret = load_secret(secret_file) if secret_file else ephemeral_secret()
    with writing(dirs=[docs], files=[report]):
        result, _ = validate_extract(ValidateRequest(
            data=data, contract=contract, secret=secret, report_path=report, docs_dir=docs,
            encoding=encoding, delimiter=delimiter))
    where = f"; report: {report}" if report else ""
    if result.verdict == "fail":
        raise ContractViolation(result.summary_line() + where)
    print(result.summary_line() + where)
    return 0


def node_init_secret(out: Path) -> int:
    from nodes.secret import create_secret

    with writing(files=[out]):
        secret = create_secret(out)
    print(f"wrote a new node secret to {out} (mode 600, key id {secret.key_id}); back it up, never share it")
    return 0


def contract_list(dirs: list[Path]) -> int:
    registry = _registry(dirs)
    print(f"{'contract':<22} {'version':<9} {'columns':>7} {'rows/resident':>13}  title")
    for c in registry.all():
        print(f"{c.name:<22} {c.version:<9} {len(c.column_names):>7} {c.max_rows_per_resident:>13}  {c.title}")
    return 0


def contract_show(name: str, dirs: list[Path]) -> int:
    from schemas.docs import contract_markdown
    from validation import contract_checks

    contract = _registry(dirs).get(name)
    print(contract_markdown(contract))
    checks = contract_checks(contract)
    print(f"## Checks ({len(checks)} Great Expectations checks + structure, types and identity codes)\n")
    for check in checks:
        print(f"- `{check.id}` ({check.severity}): {check.description}")
    return 0


def contract_docs(out: Path, dirs: list[Path]) -> int:
    from schemas.docs import contract_markdown

    registry = _registry(dirs)
    with writing(dirs=[out]):
        out.mkdir(parents=True, exist_ok=True)
        for contract in registry.all():
            (out / f"{contract.name}.md").write_text(contract_markdown(contract), encoding="utf-8")
    print(f"wrote {len(registry.names())} contract documents to {out}")
    return 0


def demo(out: Path, residents: int, municipalities: tuple[str, ...], seed: int) -> int:
    from tillit.demo import run_demo

    with writing(dirs=[out]):
        summary = run_demo(out, residents, municipalities, seed)
    print("\nsummary")
    for study_id, found in summary["studies"].items():
        extra = (f"; transition probabilities vs truth: MAE {found['transition_mae']:.4f}"
                 if "transition_mae" in found else "")
        if "transition_mae_row_by_row" in found:
            extra += f" (each row on its own counts: {found['transition_mae_row_by_row']:.4f})"
        if "auc" in found:
            extra += (f"; private AUC {found['auc']:.3f}" if found["auc"] is not None
                      else "; private AUC not informative at this size (the noise outweighs the rows)")
        if "top_factors" in found:
            adjusted = found["adjusted_top_factors_with_a_true_effect"]
            extra += (f"; {found['top_factors_with_a_true_effect']} of the released top-10 factors carry a true "
                      "effect (" + ("the model adjusting them for each other is not determined at this size"
                                    if adjusted is None else f"{adjusted} of the top-10 adjusted for each other")
                      + (f"; their model's AUC {found['adjusted_auc']:.3f}, from the counts alone"
                         if "adjusted_auc" in found else "")
                      + f"), {found['true_top10_terms_found_in_released_top10']} of the true top-10 terms are "
                      f"among the released top-10 factors and pairs; {found['bytes_moved'] / 1e6:.0f} MB relayed, "
                      "all of it sealed or noisy")
        print(f"  {study_id}: ε≤{found['epsilon_per_dataset']:.3g} per dataset{extra}\n    report: {found['report']}")
    untouched = []
    for balance in summary["ledger"]["balances"]:
        if balance["spent"]["rho"] == 0:
            untouched.append(balance["name"])
            continue
        print(f"  budget {balance['name']} {balance['period']}: spent ε={balance['spent']['epsilon']:.3g} "
              f"of {balance['cap']['epsilon']:.3g} (ρ {balance['spent']['rho']:.4g} of {balance['cap']['rho']:.4g})")
    if untouched:
        print(f"  nothing spent on {len(untouched)} other dataset(s): {', '.join(untouched)}")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds"].items())
    print(f"  wall time by phase: {phases}")
    print(f"  register: {out / 'register.json'}; summary: {out / 'summary.json'}")
    return 0


def node_init(config_path: Path, contract_dirs: list[Path]) -> int:
    from federation.pki import make_node_keys
    from nodes.agent import NodeAgent
    from nodes.config import load_node_config

    config = load_node_config(config_path, contract_dirs)
    with writing(dirs=[config.state_dir]):
        agent = NodeAgent(config)
        agent.initialise()
        if not config.federation.insecure and not (config.key_dir / "supernode").exists():
            make_node_keys(config.key_dir, "supernode")
        digest = agent.ensure_valid()
        budget = agent.budget()
    print(f"node {config.node.dataset}: extract {digest[:12]} meets contract {agent.contract.label}; "
          f"local budget rho={float(budget.cap.rho):.6g} (epsilon {config.budget.epsilon} at delta {config.budget.delta})")
    if not config.federation.insecure:
        print(f"register this node with the federation operator: {config.key_dir / 'supernode.pub'}")
    return 0


def node_start(config_path: Path, contract_dirs: list[Path]) -> int:
    import os

    from federation.processes import flower_env, run_foreground
    from nodes.agent import NodeAgent
    from nodes.config import load_node_config
    from nodes.supernode import supernode_command

    config = load_node_config(config_path, contract_dirs)  # the SuperNode gets the same directories
    with writing(dirs=[config.state_dir]):
        NodeAgent(config).ensure_valid()
    env = flower_env(config.state_dir / "flwr-home", float(os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL", 0.05)))
    return run_foreground(supernode_command(config), env)


def node_ledger(config_path: Path, contract_dirs: list[Path]) -> int:
    from nodes.agent import NodeAgent
    from nodes.config import load_node_config

    from federation.privacy import amount_json

    config = load_node_config(config_path, contract_dirs)
    with writing(dirs=[config.state_dir]):
        agent = NodeAgent(config)
        budget = agent.budget()
    left = amount_json(budget.remaining, budget.delta)
    print(f"{agent.dataset}: cap rho={float(budget.cap.rho):.6g}, spent rho={float(budget.spent.rho):.6g}, "
          f"remaining rho={left['rho']:.6g} (epsilon {left['epsilon']:.4g} at delta {budget.delta:g})")
    for study, dataset, loss, when in agent.ledger.charges():
        print(f"  {when}  {study:<24} {dataset:<24} {loss}")
    anchors = agent.ledger.anchors()
    if anchors:
        print("audit anchors seen in signed specs (check them: tillit audit verify --anchor SEQ:HASH):")
    for anchor in anchors:
        print(f"  {anchor.seq}:{anchor.hash}  {anchor.study_id}  written {anchor.at}")
    return 0


def federation_certs(out: Path, hosts: list[str], overwrite: bool) -> int:
    from federation.pki import make_federation_certs

    with writing(dirs=[out]):
        certs = make_federation_certs(out, hosts, overwrite=overwrite)
    print(f"wrote CA {certs.ca_cert} and SuperLink certificate {certs.server_cert} for {', '.join(hosts)}")
    return 0


def federation_run(spec_path: Path, data: Path, out: Path, node_epsilon: float, insecure: bool,
                   contract_dirs: list[Path] | None = None) -> int:
    import json

    from common.errors import StudyFailed
    from federation.privacy import plan_study
    from federation.spec import load_spec
    from tillit.local import LocalFederation, NodeSetup

    spec = load_spec(spec_path)
    # Everything the nodes and the ServerApp will read is checked here, before any process starts: the contract
    # directories, each dataset's contract (an unknown one is one line and exit 2), the spec against them.
    catalog = _registry(contract_dirs or [])
    dirs = tuple(d.resolve() for d in contract_dirs or [])
    nodes = []
    for dataset in spec.datasets:
        municipality, sector = dataset.split("/", 1)
        contract = catalog.get(spec.contract_of(dataset))
        path = data / municipality / f"{sector}.parquet"
        if not path.is_file():
            raise UsageError(f"no extract for {dataset} at {path}")
        nodes.append(NodeSetup(dataset, contract.name, path, epsilon_cap=node_epsilon, contracts_dirs=dirs))
    plan_study(spec, catalog)
    with writing(dirs=[out]):
        print(f"starting a SuperLink and {len(nodes)} SuperNode(s) "
              f"({'INSECURE: no TLS, no node authentication' if insecure else 'TLS, node authentication'}) ...",
              flush=True)
        with LocalFederation(out, nodes, insecure=insecure) as fed:
            print(f"running study {spec.study_id} ({spec.task}) ...", flush=True)
            result = fed.run(spec_path)
    print(f"result: {result['result_path']}")
    privacy = result["privacy"]
    print(f"privacy: rho={privacy['rho']:.6g} per dataset = (epsilon {privacy['epsilon']:.4g}, delta {privacy['delta']:g})")
    if result["status"] != "completed":
        raise StudyFailed(f"study {spec.study_id} {result['status']}: {result.get('error', {}).get('detail', '')}")
    print(json.dumps({k: result[k] for k in ("study_id", "status", "seconds")}))
    return 0


def federation_superlink(certs: Path, state: Path, host: str, port: int) -> int:
    from common.errors import UsageError
    from federation.processes import flower_env, run_foreground

    for name in ("ca.crt", "superlink.crt", "superlink.key"):
        if not (certs / name).is_file():
            raise UsageError(f"{certs / name} is missing; make it with 'tillit federation certs --out {certs}'")
    with writing(dirs=[state]):
        state.mkdir(parents=True, exist_ok=True)
    command = ["flower-superlink", "--host", host, "--port", str(port), "--disable-runtime-dependency-installation",
               "--database", str(state / "superlink.db"), "--enable-supernode-auth",
               "--ssl-ca-certfile", str(certs / "ca.crt"), "--ssl-certfile", str(certs / "superlink.crt"),
               "--ssl-keyfile", str(certs / "superlink.key")]
    return run_foreground(command, flower_env(state / "flwr-home"))
