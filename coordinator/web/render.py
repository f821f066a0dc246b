"""Rendering pages: one Jinja2 environment (autoescaped), the page headers, and the error pages.

Every page is served with a strict Content-Security-Policy (:data:`PAGE_CSP`: only this site's own scripts,
styles and images; no inline script or style, no framing); a study report, whose styles are inline so that it
opens offline, gets :data:`REPORT_CSP` (no script at all).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse

from coordinator.api_models import PERIOD, CapSetting
from coordinator.charts import budget_bar, epsilon_text, number_text
from coordinator.web.strings import LANGUAGES, text

__all__ = ["PAGE_CSP", "REPORT_CSP", "Problem", "cost_row", "error_page", "period_and_epsilon", "render"]

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _when(stamp: str | None) -> str:
    if not stamp:
        return ""
    try:
        at = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return at.strftime("%d %b %Y %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["eps"] = epsilon_text
    env.filters["num"] = number_text
    env.filters["when"] = _when
    return env


_ENV = _environment()


class Problem:
    """One error of a form, for the error summary and beside its field (GOV.UK pattern)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def period_and_epsilon(period: str, raw: str, epsilon_message: str) -> tuple[CapSetting | None, list[Problem]]:
    """A budget or cap form's period and ε: the :class:`~coordinator.api_models.CapSetting` the API would take, or
    the problems, each beside its field."""
    problems = [] if re.fullmatch(PERIOD, period) else [Problem("period", text("period_invalid"))]
    try:
        setting = CapSetting(epsilon=float(raw))
    except (ValueError, ValidationError):
        return None, [*problems, Problem("epsilon", epsilon_message)]
    return (None if problems else setting), problems


def cost_row(dataset: str, cost: dict[str, Any], spent_when: str = "") -> dict[str, Any]:
    """One dataset's line of a cost preview (``_cost_line.html``): its cost and, when it has a budget, the bar of
    spent, this study and what is left. ``spent_when``: words after "spent of the cap" (say, " before it")."""
    budget = cost["budget"]
    bar = ""
    if budget is not None:
        words = (f"{dataset}: this study ε {epsilon_text(cost['epsilon'])}; ε {epsilon_text(budget['spent']['epsilon'])}"
                 f" spent of {epsilon_text(budget['cap']['epsilon'])}{spent_when}.")
        bar = budget_bar(dataset, budget["spent"]["rho"], cost["rho"], budget["cap"]["rho"], words)
    return {"dataset": dataset, "cost": cost, "bar": bar}


def render(request: Request, page: str, status: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """A page from the template ``page``: the context gets ``t`` (strings), the signed-in principal (``signed``, if any)
    and its CSRF token for the forms."""
    lang = LANGUAGES[0]
    signed = getattr(request.state, "signed", None)
    problems: list[Problem] = context.pop("problems", [])

    def t(key: str, **values: object) -> str:
        return text(key, lang, **values)

    body = _ENV.get_template(page).render(
        t=t, lang=lang, signed=signed, csrf=signed.csrf if signed else "", problems=problems,
        errors={p.field: p.message for p in problems}, path=request.url.path, Markup=Markup, **context)
    return HTMLResponse(body, status_code=status, headers=headers)


_TITLES = {403: ("forbidden_title", "forbidden_body"), 404: ("not_found_title", "not_found_body"),
           409: ("conflict_title", ""), 503: ("unavailable_title", ""), 500: ("server_error_title", "server_error_body")}


def error_page(request: Request, status: int, detail: str, title_key: str | None = None) -> HTMLResponse:
    """An error page: "Error:" in its title, the summary above the heading, what to do next."""
    title, body = _TITLES.get(status, ("invalid_title", ""))
    if title_key is not None:
        title, body = title_key, title_key.replace("_title", "_body")
    return render(request, "error.html", status=status, title_key=title, body_key=body,
                  detail=detail if status != 500 else "")
