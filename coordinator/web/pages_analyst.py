"""An analyst's pages: templates, drafting a study with its cost previewed as the form is filled in (htmx; a
button does the same without JavaScript), the studies, a study's progress while it runs, its results (the
report's charts) and downloads.

The preview and the draft call :func:`coordinator.studies.cost_preview` and :func:`coordinator.studies.create_study`,
a run :func:`coordinator.runner.launch`, the results :func:`coordinator.runner.results` and
:func:`coordinator.reports.render_report` — what ``/v1/studies`` calls.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import NotFound, TillitError
from coordinator import runner
from coordinator.api_models import STUDY_ID, StudyDraft
from coordinator.authz import CoordinatorDep, SessionDep
from coordinator.ledger import balances
from coordinator.lifecycle import StudyStatus
from coordinator.models import Study
from coordinator.public_register import register_entry
from coordinator.reports import render_report, report_body
from coordinator.studies import cost_preview, create_study, get_study, study_json
from coordinator.web.deps import Form, PageUser
from coordinator.web.render import REPORT_CSP, Problem, cost_row, render
from coordinator.web.strings import text
from federation.templates import TEMPLATES

__all__ = ["router"]

router = APIRouter(tags=["pages"], include_in_schema=False)
StudyId = Annotated[str, Path(pattern=STUDY_ID)]
_TEXT_FIELDS = ("id", "name", "purpose", "legal_basis", "organisation", "contact", "period")
_FIELD_IDS = {"template": "params"}


@router.get("/templates", name="web_templates")
def templates(request: Request, signed: PageUser) -> Response:
    return render(request, "templates.html", templates=list(TEMPLATES.values()))


def _template_fields(name: str) -> set[str]:
    template = TEMPLATES.get(name)
    return set(template.params.model_fields) if template else set()


def _draft(form: dict[str, str]) -> tuple[StudyDraft | None, list[Problem]]:
    """The form as a study draft, or the problems in it (each tied to its field)."""
    problems: list[Problem] = []
    template = form.get("template", "")
    fields = _template_fields(template)
    params: dict[str, Any] = {}
    extra = form.get("params", "").strip()
    if extra:
        try:
            loaded = json.loads(extra)
            if not isinstance(loaded, dict):
                raise ValueError
            params.update(loaded)
        except ValueError:
            problems.append(Problem("params", text("params_invalid")))
    places = [m.strip() for m in form.get("municipalities", "").split(",") if m.strip()]
    if "municipalities" in fields and places:
        params["municipalities"] = places
    if "municipality" in fields and places:
        params["municipality"] = places[0]
    if form.get("epsilon", "").strip():
        try:
            params["epsilon"] = float(form["epsilon"])
        except ValueError:
            problems.append(Problem("epsilon", text("epsilon_invalid")))
    values = {k: form.get(k, "").strip() for k in _TEXT_FIELDS}
    try:
        draft = StudyDraft(template=template, params=params, **values)
    except ValidationError as error:
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "params"
            label = text(f"{field}_label") if field not in ("id", "template", "params") else field.replace("_", " ")
            problems.append(Problem(_FIELD_IDS.get(field, field), f"{label}: {problem['msg']}"))
        return None, problems
    return (None if problems else draft), problems


def _preview(coordinator: CoordinatorDep, session: Session, draft: StudyDraft | None,
             problems: list[Problem]) -> dict[str, Any]:
    """The cost of a draft per dataset, with a budget bar each; or why it cannot be computed."""
    if draft is None:
        return {"problems": problems, "datasets": []}
    try:
        with session.begin_nested():
            preview = cost_preview(coordinator, session, draft)
    except TillitError as error:
        return {"problems": [Problem("params", error.message)], "datasets": []}
    rows = [cost_row(dataset, cost) for dataset, cost in preview["per_dataset"].items()]
    return {"problems": [], "datasets": rows, "fits": preview["fits"]}


def _new_page(request: Request, template: str, values: dict[str, str], preview: dict[str, Any] | None,
              problems: list[Problem], status: int = 200) -> Response:
    found = TEMPLATES.get(template)
    if found is None:
        return render(request, "error.html", status=404, title_key="not_found_title", body_key="not_found_body",
                      detail=f"no template {template}")
    return render(request, "new_study.html", status=status, template=found, fields=set(found.params.model_fields),
                  values=values, preview=preview, problems=problems)


@router.get("/studies/new", name="web_new_study")
def new_study(request: Request, signed: PageUser,
              template: Annotated[str, Query(max_length=48)] = "health_transitions") -> Response:
    return _new_page(request, template, {"epsilon": "1", "period": "2024"}, None, [])


@router.post("/studies/preview", name="web_preview_study")
def preview_study(request: Request, signed: PageUser, form: Form, session: SessionDep,
                  coordinator: CoordinatorDep) -> Response:
    draft, problems = _draft(form)
    preview = _preview(coordinator, session, draft, problems)
    if request.headers.get("hx-request") == "true":
        return render(request, "_cost_preview.html", preview=preview)
    return _new_page(request, form.get("template", ""), form, preview, [])


@router.post("/studies", name="web_create_study")
def post_study(request: Request, signed: PageUser, form: Form, session: SessionDep,
               coordinator: CoordinatorDep) -> Response:
    draft, problems = _draft(form)
    if draft is not None:
        try:
            with session.begin_nested():
                create_study(coordinator, session, signed.identity, draft)
        except TillitError as error:
            if error.http_status >= 500 or error.http_status in (401, 403):
                raise
            problems = [Problem("id" if error.http_status == 409 else "params", error.message)]
        else:
            return RedirectResponse(f"/studies/{draft.id}?created=1", status_code=303)
    preview = _preview(coordinator, session, draft, []) if draft is not None else None
    return _new_page(request, form.get("template", ""), form, preview, problems, 422)


@router.get("/studies", name="web_studies")
def studies(request: Request, signed: PageUser, session: SessionDep) -> Response:
    rows = [study_json(session, s) for s in session.execute(select(Study).order_by(Study.created_at.desc())).scalars()]
    return render(request, "studies.html", studies=rows)


def _released(session: Session, study: Study) -> tuple[dict[str, Any], str, dict[str, Any]]:
    result = runner.results(session, study.id)
    found = [b.to_json() for b in balances(session, period=study.period) if b.name in result.get("datasets", [])]
    body, tables = report_body(result, found, register_entry(session, study))
    return result, body, tables


@router.get("/studies/{study_id}", name="web_study")
def study_page(request: Request, study_id: StudyId, signed: PageUser, session: SessionDep,
               created: Annotated[str, Query(max_length=4)] = "") -> Response:
    study = get_study(session, study_id)
    about = study_json(session, study)
    report, tables = "", dict[str, Any]()
    if study.status == StudyStatus.RELEASED:
        _, report, tables = _released(session, study)
    return render(request, "study.html", study=about, report=report, files=sorted(tables),
                  created=bool(created))


@router.get("/studies/{study_id}/progress", name="web_study_progress")
def study_progress(request: Request, study_id: StudyId, signed: PageUser, session: SessionDep) -> Response:
    about = study_json(session, get_study(session, study_id))
    finished = about["status"] not in (StudyStatus.LAUNCHING, StudyStatus.RUNNING)
    # htmx reloads the whole page once the study has finished, to show its results
    return render(request, "_progress.html", study=about, headers={"HX-Refresh": "true"} if finished else None)


@router.post("/studies/{study_id}/run", name="web_run_study")
def run_study(study_id: StudyId, signed: PageUser, form: Form, session: SessionDep,
              coordinator: CoordinatorDep) -> Response:
    runner.launch(coordinator, session, signed.identity, study_id)
    return RedirectResponse(f"/studies/{study_id}", status_code=303)


@router.get("/studies/{study_id}/files/{name}", name="web_study_download")
def download(study_id: StudyId, name: Annotated[str, Path(pattern=r"^[a-z_]{1,40}\.(json|csv|html)$")],
             signed: PageUser, session: SessionDep) -> Response:
    study = get_study(session, study_id)
    result = runner.results(session, study_id)
    attachment = {"Content-Disposition": f'attachment; filename="{study_id}-{name}"'}
    if name == "result.json":
        return Response(json.dumps(result, indent=1), media_type="application/json", headers=attachment)
    found = [b.to_json() for b in balances(session, period=study.period) if b.name in result.get("datasets", [])]
    page, tables = render_report(result, study.name, found, register_entry(session, study))
    if name == "report.html":
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={**attachment, "Content-Security-Policy": REPORT_CSP})
    if name not in tables:
        raise NotFound(f"study {study_id} has no file {name}")
    out = io.StringIO()
    writer = csv.writer(out)
    header, rows = tables[name]
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=attachment)
