"""The public register (no sign-in) with its Eurocities export, and the nodes' overview.

The register page shows what ``GET /v1/register`` returns (:func:`coordinator.public_register.register_entries`),
each study as plain sentences in the order of the Amsterdam and Helsinki algorithm registers, its privacy cost in
words and as a small bar. The export follows the Eurocities Algorithmic Transparency Standard
(:mod:`coordinator.web.eurocities`).
"""

from __future__ import annotations

import csv
import io
import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from coordinator.authz import SessionDep
from coordinator.charts import budget_bar, epsilon_text
from coordinator.ledger import balance
from coordinator.models import Dataset, Node
from coordinator.public_register import register_entries, register_sentences
from coordinator.web.deps import PageUser, Viewer
from coordinator.web.eurocities import FIELDS, eurocities_records
from coordinator.web.render import render

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/register", name="public_register_page")
def register_page(request: Request, viewer: Viewer, session: SessionDep) -> Response:
    document = register_entries(session)
    studies = []
    for entry in document["studies"]:
        bars = []
        for dataset, cost in entry["privacy"].items():
            found = balance(session, dataset, entry["data_period"])
            if found is None:
                continue
            budget = found.to_json()
            this = cost["rho"]
            words = (f"{dataset}: ε {epsilon_text(cost['epsilon'])} for this study; the dataset's budget for "
                     f"{entry['data_period']} is ε {epsilon_text(budget['cap']['epsilon'])}.")
            bars.append(budget_bar(dataset, max(budget["spent"]["rho"] - this, 0.0), this, budget["cap"]["rho"],
                                   words))
        studies.append({"entry": entry, "sentences": register_sentences(entry), "bars": bars})
    return render(request, "register.html", studies=studies, head=document["audit_head"])


@router.get("/register/eurocities.json", name="public_register_export_json")
def register_json(session: SessionDep) -> Response:
    records = eurocities_records(register_entries(session))
    return Response(json.dumps(records, indent=1, ensure_ascii=False), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="tillit-register-eurocities.json"'})


@router.get("/register/eurocities.csv", name="public_register_export_csv")
def register_csv(session: SessionDep) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS))
    writer.writeheader()
    writer.writerows(eurocities_records(register_entries(session)))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="tillit-register-eurocities.csv"'})


@router.get("/nodes", name="web_nodes")
def nodes(request: Request, signed: PageUser, session: SessionDep) -> Response:
    enrolled = {n.dataset: n for n in session.execute(select(Node)).scalars()}
    rows = [{"dataset": d, "node": enrolled.get(d.id), "verdict": json.loads(d.verdict) if d.verdict else None}
            for d in session.execute(select(Dataset).order_by(Dataset.id)).scalars()]
    return render(request, "nodes.html", rows=rows)
