"""Contract documentation, derived from the contract itself (never written by hand)."""

from __future__ import annotations

from schemas.contract import Column, Contract

__all__ = ["contract_markdown"]


def contract_markdown(contract: Contract) -> str:
    lines = [
        f"# {contract.title}",
        "",
        f"Contract `{contract.name}` version {contract.version} — sector `{contract.sector}`.",
        "",
        contract.description.strip(),
        "",
        f"- Privacy unit: one {contract.privacy_unit}; at most **{contract.max_rows_per_resident}** "
        f"row(s) per resident (the differential-privacy contribution bound).",
        f"- Key: {', '.join(f'`{k}`' for k in contract.key)}; identity code column `{contract.identifier}`, format "
        f"`{contract.identity_rule.format}`: {contract.identity_rule.label}. It is pseudonymised with the node's "
        "keyed hash before anything else reads it and never leaves the node.",
        f"- At least {contract.min_rows} row(s); columns outside the contract "
        f"{'block computation' if contract.extra_columns == 'block' else 'only warn'}.",
        "- Numeric columns in a model (logistic regression) are scaled to [0, 1] by their plausible range when "
        "they have one, else by their allowed range, and clipped to it (column *scaled in models by*). The bounds "
        "are public, so scaling costs no privacy — but a wide honest range flattens a feature: 0 … 99,999 for a "
        "value mostly under 5,000 puts nearly every row near 0, and the model cannot tell its effect from the "
        "noise. Give such a column a plausible range that holds most values (values beyond it count as its "
        "upper bound in a model, and only warn in validation).",
        "",
        "| column | type | privacy class | nullable | allowed | plausible (warns outside) | scaled in models by "
        "| description |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in contract.columns:
        lines.append(_row(entry))
    lines.append("")
    return "\n".join(lines)


def _row(column: Column) -> str:
    if column.type == "identity_code":
        rule = column.identity_rule
        allowed = f"format `{rule.format}`" + (f", matching `{rule.pattern}`" if rule.pattern else "")
        allowed += f", ≤ {rule.max_length} characters" if rule.max_length else ""
    elif column.categories:
        allowed = ", ".join(column.categories)
    elif column.range:
        allowed = f"{column.range[0]} … {column.range[1]}"
    elif column.max_length:
        allowed = f"≤ {column.max_length} characters"
    else:
        allowed = ""
    if column.range and column.on_violation == "warn":
        allowed += " (warns)"
    plausible = f"{column.warn_range[0]} … {column.warn_range[1]}" if column.warn_range else ""
    nullable = "no"
    if column.nullable:
        nullable = f"yes (warns above {column.max_null_rate:.1%})" if column.max_null_rate is not None else "yes"
    name = f"`{column.name}`" + (f" × {column.count}" if column.count else "")
    scaling = ""
    if column.type in ("integer", "number") and (column.warn_range or column.range):
        lo, hi = column.warn_range or column.range  # type: ignore[misc]
        scaling = f"{lo} … {hi} ({'plausible' if column.warn_range else 'allowed'} range)"
    return (f"| {name} | {column.type} | {column.privacy} | {nullable} | {allowed} | {plausible} | {scaling} "
            f"| {column.description} |")
