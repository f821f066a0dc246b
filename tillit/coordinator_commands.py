"""CLI commands that talk to the coordinator (or, for ``audit verify``, read its database directly)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import StudyFailed, TillitError, UsageError
from tillit.client import CoordinatorClient

if TYPE_CHECKING:
    from nodes.config import NodeConfig


def serve(options: dict[str, Any]) -> int:
    import uvicorn

    from coordinator.app import create_app
    from coordinator.settings import parse_settings
    from coordinator.state import open_coordinator

    import os

    settings = parse_settings(os.environ, **options)
    coordinator = open_coordinator(settings)
    print(f"coordinator state in {settings.state_dir}; database {settings.url.split('@')[-1]}; "
          f"admin token in {settings.admin_token_path} (owner-only)", flush=True)
    if settings.superlink is None:
        print("no --superlink given: studies can be drafted and approved, not run", flush=True)
    uvicorn.run(create_app(coordinator), host=settings.host, port=settings.port, log_level="warning")
    return 0


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (_, title) in enumerate(columns)]
    print("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def principal_add(client: CoordinatorClient, name: str, role: str, datasets: list[str]) -> int:
    created = client.post("/v1/principals", {"name": name, "role": role, "datasets": datasets})
    print(f"created {role} {name}; token (shown once, store it owner-only):")
    print(created["token"])
    return 0


def principal_list(client: CoordinatorClient) -> int:
    _table(client.get("/v1/principals"), [("name", "name"), ("role", "role"), ("datasets", "datasets"),
                                          ("created_at", "created")])
    return 0


def enroll(client: CoordinatorClient, config: NodeConfig) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Enroll the node's dataset and SuperNode key; report its latest validation verdict (counts only)."""
    from nodes.agent import NodeAgent

    key = config.key_dir / "supernode.pub"
    if not key.exists():
        raise UsageError(f"{key} is missing; run 'tillit node init --config {config.source}' first")
    enrolled: dict[str, Any] = client.put(f"/v1/nodes/{config.node.dataset}",
                                          {"contract": NodeAgent(config).contract.name,
                                           "public_key": key.read_text().strip()})
    verdict = NodeAgent(config).latest_verdict()
    if verdict is not None:
        client.put(f"/v1/datasets/{config.node.dataset}/validation", verdict)
    return enrolled, verdict


def node_enroll(client: CoordinatorClient, config_path: Path) -> int:
    from nodes.config import load_node_config

    enrolled, verdict = enroll(client, load_node_config(config_path))
    print(f"enrolled {enrolled['dataset']} ({enrolled['contract']})")
    if verdict is not None:
        print(f"reported validation verdict {verdict['verdict']} ({verdict['rows']:,} rows, counts only)")
    return 0


def _balance_rows(balances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": b["name"], "period": b["period"], "delta": f"{b['delta']:g}",
             "cap": f"{b['cap']['epsilon']:.4g} ({b['cap']['rho']:.4g})",
             "spent": f"{b['spent']['epsilon']:.4g} ({b['spent']['rho']:.4g})",
             "remaining": f"{b['remaining']['epsilon']:.4g} ({b['remaining']['rho']:.4g})"} for b in balances]


_BALANCE_COLUMNS = [("name", "dataset"), ("period", "period"), ("delta", "δ"), ("cap", "cap ε (ρ)"),
                    ("spent", "spent ε (ρ)"), ("remaining", "remaining ε (ρ)")]


def budget_set(client: CoordinatorClient, dataset: str, period: str, epsilon: float | None, rho: float | None,
               delta: float) -> int:
    if "/" not in dataset:
        raise UsageError("--dataset is <municipality>/<sector>, e.g. espoo/health_care")
    balance = client.put(f"/v1/budgets/{dataset}/{period}", {"epsilon": epsilon, "rho": rho, "delta": delta})
    _table(_balance_rows([balance]), _BALANCE_COLUMNS)
    return 0


def budget_cap(client: CoordinatorClient, municipality: str, period: str, epsilon: float | None,
               rho: float | None, delta: float) -> int:
    balance = client.put(f"/v1/caps/{municipality}/{period}", {"epsilon": epsilon, "rho": rho, "delta": delta})
    _table(_balance_rows([balance]), _BALANCE_COLUMNS)
    return 0


def budget_show(client: CoordinatorClient, dataset: str | None, period: str | None) -> int:
    _table(_balance_rows(client.get("/v1/budgets", dataset=dataset, period=period)), _BALANCE_COLUMNS)
    return 0


def ledger_show(client: CoordinatorClient, dataset: str | None, period: str | None) -> int:
    ledger = client.get("/v1/ledger", dataset=dataset, period=period)
    _table([{**e, "rho": f"{e['rho']:.6g}"} for e in ledger["entries"]],
           [("id", "#"), ("at", "charged at"), ("dataset", "dataset"), ("period", "period"),
            ("study_id", "study"), ("rho", "ρ"), ("rho_units", "ρ units (1e-9)")])
    print()
    _table(_balance_rows(ledger["balances"]), _BALANCE_COLUMNS)
    return 0


def study_templates(client: CoordinatorClient) -> int:
    for template in client.get("/v1/templates"):
        params = template["parameters"]
        required = params.get("required", [])
        listed = ", ".join(f"{k}{'*' if k in required else ''}" for k in params.get("properties", {}))
        print(f"{template['name']:<22} {template['title']}\n{'':<22} parameters: {listed}  (* required)")
    return 0


def _draft(options: dict[str, Any]) -> dict[str, Any]:
    text = options.pop("params")
    try:
        params = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"--params is JSON or @FILE with JSON ({type(error).__name__})") from None
    return {**options, "params": params}


def _show_cost(cost: dict[str, Any]) -> None:
    rows = []
    for dataset, c in cost["per_dataset"].items():
        budget = c["budget"]
        rows.append({"dataset": dataset, "epsilon": f"{c['epsilon']:.4g}", "rho": f"{c['rho']:.6g}",
                     "remaining": f"{budget['remaining']['epsilon']:.4g}" if budget else "no budget set",
                     "fits": "yes" if c["fits"] else "NO"})
    _table(rows, [("dataset", "dataset"), ("epsilon", "ε"), ("rho", "ρ"), ("remaining", "remaining ε"),
                  ("fits", "fits")])
    for dataset, c in cost["per_dataset"].items():
        print(f"  {dataset}: {c['noise']['in_words']}")
    for municipality, cap in cost.get("municipality_caps", {}).items():
        print(f"municipality cap {municipality}: remaining ε {cap['remaining']['epsilon']:.4g}; "
              f"fits: {'yes' if cap['fits'] else 'NO'}")


def study_create(client: CoordinatorClient, options: dict[str, Any], preview: bool) -> int:
    draft = _draft(options)
    if preview:
        cost = client.post("/v1/studies/preview", draft)
        print(f"cost of study {cost['study_id']} ({cost['task']}, period {cost['period']}), nothing saved:")
        _show_cost(cost)
        return 0
    study = client.post("/v1/studies", draft)
    print(f"drafted study {study['id']} ({study['template']}); waiting for approval by the privacy officers of "
          f"{', '.join(study['datasets'])}")
    _show_cost(study["preview"])
    return 0


def study_cost(client: CoordinatorClient, study_id: str) -> int:
    study = client.get(f"/v1/studies/{study_id}")
    balances = {b["name"]: b for b in client.get("/v1/budgets", period=study["period"])}
    rows = [{"dataset": d, "epsilon": f"{c['epsilon']:.4g}", "rho": f"{c['rho']:.6g}",
             "remaining": f"{balances[d]['remaining']['epsilon']:.4g}" if d in balances else "no budget set"}
            for d, c in study["cost"].items()]
    print(f"study {study_id}: {study['status']}, period {study['period']}, δ {study['delta']:g}")
    _table(rows, [("dataset", "dataset"), ("epsilon", "ε"), ("rho", "ρ"), ("remaining", "remaining ε")])
    return 0


def study_decide(client: CoordinatorClient, study_id: str, decision: str, reason: str) -> int:
    study = client.post(f"/v1/studies/{study_id}/{decision}", {"reason": reason})
    print(f"study {study_id}: {decision}d; status {study['status']}"
          + ("; every dataset charged and the spec signed" if study["status"] == "approved" else ""))
    return 0


def study_status(client: CoordinatorClient, study_id: str | None) -> int:
    if study_id is None:
        _table(client.get("/v1/studies"), [("id", "study"), ("template", "template"), ("status", "status"),
                                           ("period", "period"), ("analyst", "analyst"), ("created_at", "drafted")])
        return 0
    study = client.get(f"/v1/studies/{study_id}")
    print(_status_line(study))
    for approval in study["approvals"]:
        print(f"  {approval['decision']:<8} {approval['dataset']:<28} by {approval['officer']}: {approval['reason']}")
    return 0


def _status_line(study: dict[str, Any]) -> str:
    progress = study.get("progress") or {}
    where = f" ({progress['phase']} {progress['done']}/{progress['total']})" if progress and study["status"] == "running" else ""
    error = study.get("error") or {}
    failure = f": {error.get('detail', '')}" if error else ""
    return f"study {study['id']}: {study['status']}{where}{failure}"


def wait_for_study(client: CoordinatorClient, study_id: str, timeout: float, indent: str = "") -> dict[str, Any]:
    """Follow a launched study, printing each change of status or progress, until it is no longer running."""
    deadline, last = time.monotonic() + timeout, ""
    while True:
        study: dict[str, Any] = client.get(f"/v1/studies/{study_id}")
        line = _status_line(study)
        if line != last:
            print(indent + line, flush=True)
            last = line
        if study["status"] not in ("approved", "launching", "running"):
            return study
        if time.monotonic() > deadline:
            raise TillitError(f"study {study_id} still running after {timeout:.0f} s; see 'tillit study status'")
        time.sleep(1.0)


def study_run(client: CoordinatorClient, study_id: str, wait: bool, timeout: float) -> int:
    study = client.post(f"/v1/studies/{study_id}/run")
    print(f"study {study_id} launched as run {study['run_id']}", flush=True)
    if not wait:
        return 0
    study = wait_for_study(client, study_id, timeout)
    if study["status"] != "released":
        raise StudyFailed(_status_line(study))
    return 0


def study_results(client: CoordinatorClient, study_id: str, out: Path | None) -> int:
    if out is None:
        print(json.dumps(client.get(f"/v1/studies/{study_id}/results"), indent=1))
        return 0
    report = write_study_files(client, study_id, out)
    print(f"wrote {out / 'result.json'}, the CSV tables and {report}")
    return 0


def write_study_files(client: CoordinatorClient, study_id: str, out: Path) -> Path:
    """A released study's result JSON, CSV tables and HTML report under ``out`` (what the demo writes too)."""
    from coordinator.reports import write_report

    result = client.get(f"/v1/studies/{study_id}/results")
    study = client.get(f"/v1/studies/{study_id}")
    balances = [b for b in client.get("/v1/budgets", period=study["period"]) if b["name"] in result["datasets"]]
    register = next((s for s in client.get("/v1/register")["studies"] if s["id"] == study_id), None)
    try:
        return write_report(result, out, study["name"], balances, register)
    except OSError as error:
        raise UsageError(f"cannot write the study's files to {out} ({error.strerror or type(error).__name__})") \
            from None


def audit_verify(state_dir: Path, database_url: str | None) -> int:
    from coordinator.audit import verify_chain
    from coordinator.db import Database
    from coordinator.settings import parse_settings
    from federation.signing import load_public_key

    settings = parse_settings(state_dir=state_dir, database_url=database_url)
    if database_url is None and not (state_dir / "coordinator.sqlite").exists():
        raise UsageError(f"no coordinator database in {state_dir}")
    key_path = settings.signing_key_path.with_suffix(".pub")
    if not key_path.exists():
        raise UsageError(f"no coordinator public key at {key_path}; is {state_dir} a coordinator state directory?")
    db = Database(settings.url)
    try:
        with db.transaction() as session:
            report = verify_chain(session, load_public_key(key_path))
    finally:
        db.dispose()
    if report.intact:
        print(f"audit log intact: {report.entries} entries, head {report.head_seq} {report.head_hash}")
        return 0
    for problem in report.problems:
        print(f"TAMPERED: {problem}")
    raise TillitError(f"audit log tampered: {len(report.problems)} problem(s) in {report.entries} entries")
