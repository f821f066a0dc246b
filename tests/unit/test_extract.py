from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from common.errors import UnusableInputError, UsageError
from nodes.extract import pseudonymise, read_extract
from nodes.secret import create_secret, ephemeral_secret, load_secret
from schemas import ContractCatalog

CODES = ["131052-308T", "010594Y9032", "131052-308T", "131052-308U", None]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"person_id": pd.Series(CODES, dtype="str"), "year": [2020, 2020, 2021, 2020, 2020]})


def test_every_spelling_of_a_code_becomes_one_pseudonym_under_the_contracts_format() -> None:
    # Prepare: a Swedish contract (the built-in one with format se), and one person spelled three ways
    from schemas.synth import country_contracts

    contract = country_contracts({"health_care": ContractCatalog().get("health_care")}, "se")["health_care"]
    frame = pd.DataFrame({"person_id": pd.Series(["880320-0016", "198803200016", "8803200016", "131052-308T", None],
                                                 dtype="str"), "year": [2020, 2021, 2022, 2020, 2020]})
    # Execute
    hashed, check = pseudonymise(frame, contract, ephemeral_secret().pseudonym_key)
    # Assert: one resident; a Finnish code is malformed under the Swedish rule; counts only
    assert check is not None and check.missing == 1 and check.invalid_format == 1
    assert hashed["person_id"].iloc[:3].nunique() == 1 and hashed["person_id"].iloc[3:].isna().all()


def test_pseudonyms_are_keyed_stable_and_hide_the_codes(registry: ContractCatalog) -> None:
    # Prepare
    contract = registry.get("health_care")
    key_a, key_b = ephemeral_secret().pseudonym_key, ephemeral_secret().pseudonym_key
    # Execute
    first, check = pseudonymise(_frame(), contract, key_a)
    again, _ = pseudonymise(_frame(), contract, key_a)
    other, _ = pseudonymise(_frame(), contract, key_b)
    # Assert
    ids = first["person_id"].tolist()
    assert ids[0] == ids[2] and ids[0] != ids[1]
    assert ids == again["person_id"].tolist()
    assert ids[0] != other["person_id"][0]
    assert pd.isna(ids[3]) and pd.isna(ids[4])          # invalid and missing codes get no pseudonym
    assert not set(CODES[:4]) & set(first.to_numpy().ravel().tolist())
    assert check is not None and (check.missing, check.invalid_check_character) == (1, 1)


def test_secret_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    # Prepare
    made = create_secret(tmp_path / "node.secret")
    loose = tmp_path / "loose.secret"
    loose.write_text("x" * 64)
    loose.chmod(0o644)
    short = tmp_path / "short.secret"
    short.write_text("abc")
    short.chmod(0o600)
    # Execute / Assert
    assert load_secret(tmp_path / "node.secret").key_id == made.key_id
    assert "material" not in repr(made) or made.material.decode() not in repr(made)
    with pytest.raises(UsageError, match="readable by others"):
        load_secret(loose)
    with pytest.raises(UsageError, match="fewer than 32 bytes"):
        load_secret(short)
    with pytest.raises(UsageError, match="exists already"):
        create_secret(tmp_path / "node.secret")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.parquet", b"", "is empty (0 bytes)"),
        ("text.parquet", b"person_id,year\n", "is not a Parquet file"),
        ("cut.parquet", b"PAR1" + b"\x00" * 64, "truncated Parquet file"),
        ("damaged.parquet", b"PAR1" + b"\x01" * 64 + b"PAR1", "cannot be read as Parquet"),
        ("latin1.csv", "person_id,district\n131052-308T,Östersundom\n".encode("latin-1"), "is not valid utf-8 text"),
        ("semicolon.csv", b"person_id;year\n131052-308T;2020\n", "looks ';'-separated"),
        ("ragged.csv", b"person_id,year\n1,2,3,4\n", "different field counts"),
        ("data.xlsx", b"PK\x03\x04 not a table", "neither Parquet nor CSV"),
    ],
)
def test_unreadable_files_are_unusable_input(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnusableInputError, match=re.escape(message)):
        read_extract(path)


def test_missing_path_and_directory_are_unusable(tmp_path: Path) -> None:
    with pytest.raises(UnusableInputError, match="does not exist"):
        read_extract(tmp_path / "nowhere.parquet")
    with pytest.raises(UnusableInputError, match="not a regular file"):
        read_extract(tmp_path)
