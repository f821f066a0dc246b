from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from common.errors import ContractError
from schemas import BUILTIN_DIR, ContractCatalog, contract_yaml, load_contract_file
from schemas.identity import IdentityRule

REQUIRED_SECTORS = {"population_register", "health_care", "social_services", "child_welfare", "education", "employment"}


def _minimal() -> dict[str, object]:
    return {
        "name": "housing", "version": "1.0.0", "title": "Housing", "sector": "housing",
        "identifier": "person_id", "max_rows_per_resident": 1, "key": ["person_id"],
        "columns": [
            {"name": "person_id", "type": "identity_code", "privacy": "direct_identifier"},
            {"name": "rent", "type": "number", "privacy": "sensitive", "range": [0.0, 10000.0]},
        ],
    }


def _write(directory: Path, document: dict[str, object], name: str = "housing.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_builtin_contracts_cover_the_required_sectors_with_privacy_classes(registry: ContractCatalog) -> None:
    # Prepare / Execute
    names = set(registry.names())
    # Assert
    assert REQUIRED_SECTORS <= names
    for contract in registry.all():
        identifier = contract.column(contract.identifier)
        assert identifier.privacy == "direct_identifier"
        assert contract.max_rows_per_resident >= 1
        assert contract.version.count(".") == 2
        assert {c.privacy for c in contract.expanded_columns} <= {
            "direct_identifier", "quasi_identifier", "sensitive", "public"}


def test_risk_factor_families_expand_to_280_columns_across_sectors(registry: ContractCatalog) -> None:
    factors = [c.name for contract in registry.all() for c in contract.expanded_columns if "_rf_" in c.name]
    assert len(factors) == 280
    assert len({f.split("_rf_")[0] for f in factors}) == 4
    assert "ss_rf_001" in factors and "ss_rf_070" in factors and "ss_rf_071" not in factors


def test_a_team_adds_its_own_contract_as_a_file(tmp_path: Path) -> None:
    # Prepare
    _write(tmp_path, _minimal())
    # Execute
    registry = ContractCatalog(extra_dirs=[tmp_path])
    # Assert
    housing = registry.get("housing")
    assert housing.column("rent").range == (0.0, 10000.0)
    assert "health_care" in registry.names()


def test_json_contract_files_are_accepted(tmp_path: Path) -> None:
    import json

    path = tmp_path / "housing.json"
    path.write_text(json.dumps(_minimal()))
    assert load_contract_file(path).name == "housing"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["columns"][1].update(range=[5.0, 1.0]), "lower bound exceeds upper bound"),
        (lambda d: d["columns"][1].update(warn_range=[0.0, 20000.0]), "warn_range must lie inside range"),
        (lambda d: d["columns"].append({"name": "kind", "type": "category", "privacy": "public"}), "needs non-empty categories"),
        (lambda d: d["columns"].append(dict(d["columns"][1])), "columns repeat: rent"),
        (lambda d: d.update(identifier="rent"), "must name an identity_code column"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["columns"][0].update(privacy="sensitive"), "must be a direct_identifier"),
        (lambda d: d.update(version="1.0"), "MAJOR.MINOR.PATCH"),
        (lambda d: d["columns"][1].update(max_null_rate=0.1), "needs nullable: true"),
        (lambda d: d["columns"][0].update(format="de"), "columns.0.format"),
        (lambda d: d["columns"][1].update(format="se"), "format only applies to identity_code"),
        (lambda d: d["columns"][0].update(pattern="[0-9]+"), "pattern only applies to format: opaque"),
        (lambda d: d["columns"][0].update(format="opaque", pattern="[0-9"), "pattern is not a regular expression"),
        (lambda d: d["columns"][0].update(format="no", max_length=11), "max_length only applies to strings and opaque"),
    ],
)
def test_malformed_contract_files_give_one_readable_error(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    # Prepare
    document = _minimal()
    change(document)
    path = _write(tmp_path, document)
    # Execute
    with pytest.raises(ContractError) as caught:
        load_contract_file(path)
    # Assert
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and text.startswith("contract housing.yaml")


def test_a_contract_name_defined_twice_is_refused(tmp_path: Path) -> None:
    twin = yaml.safe_load((BUILTIN_DIR / "health_care.yaml").read_text())
    _write(tmp_path, twin, "my_health.yaml")
    with pytest.raises(ContractError, match="defined twice"):
        ContractCatalog(extra_dirs=[tmp_path])


@pytest.mark.parametrize(("settings", "rule"), [
    ({}, IdentityRule("fi")),
    ({"format": "se"}, IdentityRule("se")),
    ({"format": "is"}, IdentityRule("is")),
    ({"format": "opaque"}, IdentityRule("opaque")),
    ({"format": "opaque", "pattern": "[0-9a-f]{64}", "max_length": 64}, IdentityRule("opaque", "[0-9a-f]{64}", 64)),
])
def test_the_identifier_says_which_resident_key_it_holds(tmp_path: Path, settings: dict[str, object],
                                                         rule: IdentityRule) -> None:
    # Prepare: every existing contract says nothing and keeps Finnish codes
    document = _minimal()
    document["columns"][0].update(settings)  # type: ignore[index]
    # Execute
    contract = load_contract_file(_write(tmp_path, document))
    # Assert
    assert contract.identity_rule == rule


def test_every_builtin_contract_keeps_finnish_codes(registry: ContractCatalog) -> None:
    assert {c.identity_rule for c in registry.all()} == {IdentityRule("fi")}


def test_a_team_file_replaces_a_builtin_contract_only_when_it_says_so(tmp_path: Path) -> None:
    # Prepare: the built-in health care contract with Swedish codes, once without and once with the flag
    swedish = yaml.safe_load((BUILTIN_DIR / "health_care.yaml").read_text())
    swedish["columns"][0]["format"] = "se"
    silent, said = tmp_path / "silent", tmp_path / "said"
    silent.mkdir()
    said.mkdir()
    _write(silent, swedish, "health_care.yaml")
    _write(said, {**swedish, "replaces_builtin": True}, "health_care.yaml")
    # Execute / Assert: without the flag it is a twin, refused; with it, it stands in for the built-in one
    with pytest.raises(ContractError, match="defined twice.*only with replaces_builtin: true"):
        ContractCatalog([silent])
    catalog = ContractCatalog([said])
    assert catalog.get("health_care").identity_rule == IdentityRule("se")
    assert catalog.source("health_care") == said / "health_care.yaml"
    # the same directory twice (an option and the environment) is read once; two directories both replacing is not
    assert ContractCatalog([said, said]).get("health_care").identity_rule == IdentityRule("se")
    twin = tmp_path / "twin"
    twin.mkdir()
    _write(twin, {**swedish, "replaces_builtin": True}, "health_care.yaml")
    with pytest.raises(ContractError, match="defined twice"):
        ContractCatalog([said, twin])


def test_replacing_a_builtin_contract_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {**_minimal(), "replaces_builtin": True})
    with pytest.raises(ContractError, match="no built-in contract 'housing'"):
        ContractCatalog([tmp_path])


def test_a_contract_written_as_yaml_reads_back_equal(tmp_path: Path, registry: ContractCatalog) -> None:
    for contract in registry.all():
        path = tmp_path / f"{contract.name}.yaml"
        path.write_text(contract_yaml(contract, "written by a test"))
        assert load_contract_file(path) == contract
        assert path.read_text().startswith("# written by a test\n")


def test_unknown_contract_lists_the_known_ones(registry: ContractCatalog) -> None:
    with pytest.raises(ContractError, match="known: child_health"):
        registry.get("housing")


def test_a_file_that_is_not_yaml_is_a_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(ContractError, match="not readable as YAML"):
        load_contract_file(path)
