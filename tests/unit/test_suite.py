from __future__ import annotations

from schemas import ContractCatalog
from validation import contract_checks
from validation._docs import sanitize_html


def test_suite_follows_the_contract_clauses(registry: ContractCatalog) -> None:
    # Prepare
    contract = registry.get("health_care")
    # Execute
    checks = {c.id: c for c in contract_checks(contract)}
    # Assert: each clause of the contract is one check with the contract's severity
    assert checks["health_segment.range"].kwargs == {"column": "health_segment", "min_value": 1, "max_value": 20}
    assert checks["health_segment.null_rate"].severity == "warn"
    assert checks["health_segment.null_rate"].kwargs["mostly"] == 0.99
    assert checks["primary_care_visits.plausible_range"].severity == "warn"
    assert checks["service_status.categories"].kwargs["value_set"] == ["none", "preventive", "home_care", "intensive"]
    assert checks["key.unique"].expectation == "ExpectCompoundColumnsToBeUnique"
    assert checks["resident.max_rows"].kwargs["max_value"] == 6
    assert "person_id.not_null" not in checks  # the identity-code check counts missing codes


def test_single_row_contracts_check_the_key_not_rows_per_resident(registry: ContractCatalog) -> None:
    checks = {c.id: c for c in contract_checks(registry.get("population_register"))}
    assert checks["key.unique"].expectation == "ExpectColumnValuesToBeUnique"
    assert "resident.max_rows" not in checks


def test_an_opaque_keys_length_is_checked_before_hashing_not_by_the_suite() -> None:
    # Prepare: a team's contract whose resident key is an upstream pseudonym of at most 19 characters
    from schemas import parse_contract

    contract = parse_contract({
        "name": "falls", "version": "0.1.0", "title": "Falls", "sector": "elderly_care", "identifier": "key",
        "max_rows_per_resident": 1, "key": ["key"],
        "columns": [{"name": "key", "type": "identity_code", "privacy": "direct_identifier", "format": "opaque",
                     "max_length": 19}]}, "test")
    # Execute
    checks = {c.id for c in contract_checks(contract)}
    # Assert: the suite sees the node's pseudonyms, whose length says nothing about the key's
    assert "key.max_length" not in checks and contract.identity_rule.max_length == 19


def test_sanitizer_removes_every_external_reference() -> None:
    # Prepare
    html = ('<html><head><link rel="stylesheet" href="https://cdn.example/b.css">'
            '<script src="//cdn.example/j.js"></script><style>@import url("https://x/y.css");</style></head>'
            '<body><img src="https://bucket.example/logo.png?d=1"><a href="https://example.org/docs">docs</a>'
            '<form action="https://example.org/news"><input></form><a href="local.html">ok</a></body></html>')
    # Execute
    clean = sanitize_html(html)
    # Assert
    assert "example" not in clean and "//" not in clean.replace("</", "")
    assert 'href="local.html"' in clean and "<style>" in clean
