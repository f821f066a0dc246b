"""CLI commands that talk to the coordinator (or, for ``audit verify``, read its database directly)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import ProcessFailed, StudyFailed, TillitError, UsageError
from tillit.arguments import MAX_PARAMS_CHARS
from tillit.client import CoordinatorClient, route
from tillit.outputs import writing

if TYPE_CHECKING:
    from coordinator.settings import CoordinatorSettings
    from coordinator.state import Coordinator
    from nodes.config import NodeConfig


def serve(options: dict[str, Any]) -> int:
    import uvicorn

    from coordinator.app import create_app
    from coordinator.settings import parse_settings
    from schemas import ContractCatalog

    import os

    settings = parse_settings(os.environ, **options)
    if settings.state_dir.exists() and not settings.state_dir.is_dir():
        raise UsageError(f"--state {settings.state_dir} is not a directory")
    ContractCatalog(settings.contracts_dirs)  # a missing directory or a broken file: one line, before any state
    _check_can_listen(settings.host, settings.port)
    coordinator = _open(settings)
    print(f"coordinator state in {settings.state_dir}; database {settings.url.split('@')[-1]}; "
          f"admin token in {settings.admin_token_path} (owner-only)", flush=True)
    apart = not settings.signing_key_path.resolve().is_relative_to(settings.state_dir.resolve())
    print(f"study-signing key {settings.signing_key_path}" + ("" if apart else
          " (inside the state directory: keep it apart with --signing-key so that a writer of the state cannot "
          "re-sign the audit log)"), flush=True)
    if settings.superlink is None:
        print("no --superlink given: studies can be drafted and approved, not run", flush=True)
    try:
        uvicorn.run(create_app(coordinator), host=settings.host, port=settings.port, log_level="warning")
    except SystemExit as stop:  # uvicorn exits this way when it cannot start; it has logged why
        if stop.code not in (0, None):
            raise ProcessFailed("the coordinator could not start serving; the lines above say why") from None
    return 0


def _open(settings: CoordinatorSettings) -> Coordinator:
    """The coordinator on its state directory and database, or one line saying why it cannot be opened."""
    from alembic.util import CommandError
    from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, ProgrammingError

    from coordinator.state import open_coordinator

    where = f"the coordinator's state in {settings.state_dir} (database {settings.url.split('@')[-1]})"
    try:
        return open_coordinator(settings)
    except (IntegrityError, ProgrammingError):
        raise  # our own SQL is wrong: a bug, with its traceback
    except DatabaseError as error:  # not a database, corrupt, locked, unreachable
        reason = str(error.orig if error.orig is not None else error).splitlines()[0]
        raise UsageError(f"cannot open {where}: {reason}") from None
    except (ArgumentError, CommandError) as error:  # an unusable URL; a schema newer than this Tillit
        raise UsageError(f"cannot open {where}: {str(error).splitlines()[0]}") from None
    except OSError as error:
        named = f" ({error.filename})" if error.filename else ""
        raise UsageError(f"cannot open {where}: {(error.strerror or type(error).__name__).lower()}{named}") \
            from None


def _check_can_listen(host: str, port: int) -> None:
    """Refuse in one line, before anything is opened, an address the coordinator cannot listen on."""
    import socket

    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise UsageError(f"cannot serve on {host}:{port}: {(error.strerror or type(error).__name__).lower()}") \
            from None


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
                                          ("created_at", "created"), ("revoked", "revoked")])
    return 0


def principal_revoke(client: CoordinatorClient, name: str) -> int:
    revoked = client.post(route("/v1/principals/{}/revoke", name))
    print(f"revoked {revoked['role']} {name} at {revoked['revoked_at']}: its token is refused from now on")
    return 0


def enroll(client: CoordinatorClient, config: NodeConfig) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Enroll the node's dataset and SuperNode key; report its latest validation verdict (counts only)."""
    from nodes.agent import NodeAgent

    key = config.key_dir / "supernode.pub"
    if not key.exists():
        raise UsageError(f"{key} is missing; run 'tillit node init --config {config.source}' first")
    municipality, _, sector = config.node.dataset.partition("/")
    enrolled: dict[str, Any] = client.put(route("/v1/nodes/{}/{}", municipality, sector),
                                          {"contract": NodeAgent(config).contract.name,
                                           "public_key": key.read_text().strip()})
    verdict = NodeAgent(config).latest_verdict()
    if verdict is not None:
        client.put(route("/v1/datasets/{}/{}/validation", municipality, sector), verdict)
    return enrolled, verdict


def node_enroll(client: CoordinatorClient, config_path: Path, contract_dirs: list[Path] | None = None) -> int:
    from nodes.config import load_node_config

    enrolled, verdict = enroll(client, load_node_config(config_path, contract_dirs or []))
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
    municipality, slash, sector = dataset.partition("/")
    if not slash:
        raise UsageError("--dataset is <municipality>/<sector>, e.g. espoo/health_care")
    balance = client.put(route("/v1/budgets/{}/{}/{}", municipality, sector, period),
                         {"epsilon": epsilon, "rho": rho, "delta": delta})
    _table(_balance_rows([balance]), _BALANCE_COLUMNS)
    return 0


def budget_cap(client: CoordinatorClient, municipality: str, period: str, epsilon: float | None,
               rho: float | None, delta: float) -> int:
    balance = client.put(route("/v1/caps/{}/{}", municipality, period),
                         {"epsilon": epsilon, "rho": rho, "delta": delta})
    _table(_balance_rows([balance]), _BALANCE_COLUMNS)
    return 0


def budget_show(client: CoordinatorClient, dataset: str | None, period: str | None) -> int:
    """The datasets' budgets; then, unless one dataset was asked for, the municipalities' caps."""
    _table(_balance_rows(client.get("/v1/budgets", dataset=dataset, period=period)), _BALANCE_COLUMNS)
    caps = [] if dataset else client.get("/v1/caps", period=period)
    if caps:
        print()
        _table(_balance_rows([{**c, "name": c["municipality"]} for c in caps]),
               [("name", "municipality cap (per resident, all silos)"), *_BALANCE_COLUMNS[1:]])
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
    text, source = options.pop("params"), "--params"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"the --params file {path}"
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_PARAMS_CHARS + 1)
        except OSError as error:
            raise UsageError(f"cannot read {source}: {(error.strerror or type(error).__name__).lower()}") from None
        if len(raw) > MAX_PARAMS_CHARS:
            raise UsageError(f"{source} is larger than {MAX_PARAMS_CHARS // 1024} KiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{source} is not UTF-8 text") from None
    return {**options, "params": _params(text, source)}


class _NotFinite(ValueError):
    pass


def _params(text: str, source: str) -> dict[str, Any]:
    """Template parameters: one JSON object of finite numbers (a study's cost is computed from them)."""

    def refuse(_: str) -> float:
        raise _NotFinite("NaN and infinity are not numbers a template takes")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise _NotFinite("a number is too large to be finite")
        return value

    try:
        params = json.loads(text, parse_constant=refuse, parse_float=finite)
    except json.JSONDecodeError as error:
        raise UsageError(f"{source} is not JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except _NotFinite as error:
        raise UsageError(f"{source}: {error}") from None
    except ValueError:  # Python refuses integers of more than 4,300 digits
        raise UsageError(f"{source}: a number has too many digits") from None
    except RecursionError:
        raise UsageError(f"{source} is nested too deeply") from None
    if not isinstance(params, dict):
        raise UsageError(f"{source} must be a JSON object, e.g. {{\"municipalities\": [\"espoo\"], \"epsilon\": 1}}")
    return params


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
    study = client.get(route("/v1/studies/{}", study_id))
    balances = {b["name"]: b for b in client.get("/v1/budgets", period=study["period"])}
    rows = [{"dataset": d, "epsilon": f"{c['epsilon']:.4g}", "rho": f"{c['rho']:.6g}",
             "remaining": f"{balances[d]['remaining']['epsilon']:.4g}" if d in balances else "no budget set"}
            for d, c in study["cost"].items()]
    print(f"study {study_id}: {study['status']}, period {study['period']}, δ {study['delta']:g}")
    _table(rows, [("dataset", "dataset"), ("epsilon", "ε"), ("rho", "ρ"), ("remaining", "remaining ε")])
    return 0


def study_decide(client: CoordinatorClient, study_id: str, decision: str, reason: str) -> int:
    study = client.post(route("/v1/studies/{}/{}", study_id, decision), {"reason": reason})
    print(f"study {study_id}: {decision}d; status {study['status']}"
          + ("; every dataset charged and the spec signed" if study["status"] == "approved" else ""))
    return 0


def study_status(client: CoordinatorClient, study_id: str | None) -> int:
    if study_id is None:
        _table(client.get("/v1/studies"), [("id", "study"), ("template", "template"), ("status", "status"),
                                           ("period", "period"), ("analyst", "analyst"), ("created_at", "drafted")])
        return 0
    study = client.get(route("/v1/studies/{}", study_id))
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
        study: dict[str, Any] = client.get(route("/v1/studies/{}", study_id))
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
    study = client.post(route("/v1/studies/{}/run", study_id))
    print(f"study {study_id} launched as run {study['run_id']}", flush=True)
    if not wait:
        return 0
    study = wait_for_study(client, study_id, timeout)
    if study["status"] != "released":
        raise StudyFailed(_status_line(study))
    return 0


def study_results(client: CoordinatorClient, study_id: str, out: Path | None) -> int:
    if out is None:
        print(json.dumps(client.get(route("/v1/studies/{}/results", study_id)), indent=1))
        return 0
    report = write_study_files(client, study_id, out)
    print(f"wrote {out / 'result.json'}, the CSV tables and {report}")
    return 0


def write_study_files(client: CoordinatorClient, study_id: str, out: Path) -> Path:
    """A released study's result JSON, CSV tables and HTML report under ``out`` (what the demo writes too)."""
    from coordinator.reports import write_report

    with writing(dirs=[out]):
        result = client.get(route("/v1/studies/{}/results", study_id))
        study = client.get(route("/v1/studies/{}", study_id))
        balances = [b for b in client.get("/v1/budgets", period=study["period"]) if b["name"] in result["datasets"]]
        register = next((s for s in client.get("/v1/register")["studies"] if s["id"] == study_id), None)
        return write_report(result, out, study["name"], balances, register)


def audit_verify(state_dir: Path, database_url: str | None, public_key: Path | None = None,
                 anchors: list[str] | None = None) -> int:
    """The chain, the anchors and every table against the chain; without ``public_key``, the key beside the
    state directory's default signing key (which whoever can write the state directory can replace)."""
    from coordinator.audit import parse_anchor
    from coordinator.db import Database
    from coordinator.settings import default_signing_key, parse_settings
    from coordinator.verify import verify
    from federation.signing import load_public_key

    settings = parse_settings(state_dir=state_dir, database_url=database_url)
    if database_url is None and not (state_dir / "coordinator.sqlite").exists():
        raise UsageError(f"no coordinator database in {state_dir}")
    key_path = public_key or default_signing_key(state_dir).with_suffix(".pub")
    if not key_path.exists():
        raise UsageError(f"no coordinator public key at {key_path}; pass --public-key (is {state_dir} a "
                         "coordinator state directory?)")
    try:
        points = [parse_anchor(text) for text in anchors or []]
    except ValueError as error:
        raise UsageError(f"--anchor: {error}") from None
    db = Database(settings.url)
    try:
        with db.transaction() as session:
            report = verify(session, load_public_key(key_path), points)
    finally:
        db.dispose()
    if report.intact:
        print(f"audit log intact: {report.entries} entries, head {report.head_seq} {report.head_hash}; "
              "every ledger row, budget, cap, principal, study and node key agrees with it"
              + (f"; {len(points)} anchor(s) on the chain" if points else ""))
        return 0
    for problem in report.problems:
        print(f"TAMPERED: {problem}")
    raise TillitError(f"audit log tampered: {len(report.problems)} problem(s) in {report.entries} entries")
