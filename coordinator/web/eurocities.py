"""The public register in the Eurocities Algorithmic Transparency Standard's format (CSV and JSON).

The standard (Eurocities Digital Forum Lab, version 0.3.1, built on the Amsterdam and Helsinki registers and the
Dutch algorithm register standard) names the attributes below; each record fills them from the register entry
(:func:`coordinator.public_register.register_entry`) and its sentences. The mapping, also in the README:

==========================  ===================================================================
standard attribute          Tillit register
==========================  ===================================================================
uuid                        study id
name                        study name
organization                responsible organisation
description_short           the summary sentence
type                        "statistical analysis with differential privacy" (fixed)
category                    "service planning" (fixed)
status                      in development (approved, not finished) / in use (released) /
                            out of use (failed)
goal                        purpose
impact                      the non-discrimination sentence (no decision about any person)
proportionality             the privacy cost in words (ε per dataset)
lawful_basis                legal basis
decision_making_process     the human oversight sentence (who approved, when)
human_intervention          the same: every dataset's privacy officer decides first
source_data                 the datasets, data period and variables
methods_and_models          the mechanism and what is released
risk_management             the risks sentence
contact_email               contact
begin_date / end_date       approved / finished (dates)
standard_version            "0.3.1"
==========================  ===================================================================
"""

from __future__ import annotations

from typing import Any

from coordinator.public_register import register_sentences

__all__ = ["FIELDS", "STANDARD_VERSION", "eurocities_records"]

STANDARD_VERSION = "0.3.1"
FIELDS = ("uuid", "name", "organization", "description_short", "type", "category", "status", "goal", "impact",
          "proportionality", "lawful_basis", "decision_making_process", "human_intervention", "source_data",
          "methods_and_models", "risk_management", "contact_email", "begin_date", "end_date", "standard_version")
_STATUS = {"approved": "in development", "launching": "in development", "running": "in development",
           "released": "in use", "failed": "out of use"}


def eurocities_records(document: dict[str, Any]) -> list[dict[str, str]]:
    """One record per registered study, every value a string (the CSV and the JSON hold the same)."""
    records = []
    for entry in document["studies"]:
        said = dict(register_sentences(entry))
        dates = entry["dates"]
        records.append({
            "uuid": entry["id"], "name": entry["name"], "organization": entry["responsible_organisation"],
            "description_short": said["Summary"], "type": "statistical analysis with differential privacy",
            "category": "service planning", "status": _STATUS.get(entry["status"], entry["status"]),
            "goal": entry["purpose"], "impact": said["Non-discrimination"], "proportionality": said["Privacy cost"],
            "lawful_basis": entry["legal_basis"], "decision_making_process": said["Human oversight"],
            "human_intervention": said["Human oversight"], "source_data": said["Data"],
            "methods_and_models": said["Model"], "risk_management": said["Risks"], "contact_email": entry["contact"],
            "begin_date": (dates.get("approved") or "")[:10], "end_date": (dates.get("finished") or "")[:10],
            "standard_version": STANDARD_VERSION,
        })
    return records
