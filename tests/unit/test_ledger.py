"""The node's own ledger: caps, exact charges, idempotence, no overspend under concurrency."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from common.errors import RefusalCode, StudyRefused
from federation.privacy import PrivacyLoss
from nodes.ledger import NodeLedger

DATASET = "espoo/health_care"


def test_charges_are_idempotent_and_capped(tmp_path: Path) -> None:
    # Prepare
    ledger = NodeLedger(tmp_path / "ledger.sqlite")
    ledger.set_cap(DATASET, PrivacyLoss(100))
    # Execute
    first = ledger.charge("s1", DATASET, PrivacyLoss(60), "h")
    again = ledger.charge("s1", DATASET, PrivacyLoss(60), "h")
    # Assert
    assert first.new and not again.new
    assert ledger.spent(DATASET) == PrivacyLoss(60)
    with pytest.raises(StudyRefused, match=r"local budget\) period all has ρ=4e-08 .* left of ρ=1e-07") as refused:
        ledger.charge("s2", DATASET, PrivacyLoss(41), "h")
    assert refused.value.reason_code == RefusalCode.BUDGET_EXCEEDED and DATASET in refused.value.message
    with pytest.raises(StudyRefused, match="spec changed"):
        ledger.charge("s1", DATASET, PrivacyLoss(61), "h")
    assert ledger.spent(DATASET) == PrivacyLoss(60)


def test_no_cap_means_no_study(tmp_path: Path) -> None:
    with pytest.raises(StudyRefused, match="no local privacy budget"):
        NodeLedger(tmp_path / "l.sqlite").charge("s1", DATASET, PrivacyLoss(1), "h")


def test_twenty_concurrent_charges_against_a_cap_for_five_admit_exactly_five(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "ledger.sqlite"
    NodeLedger(path).set_cap(DATASET, PrivacyLoss(50))
    outcomes: list[bool] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        try:
            NodeLedger(path).charge(f"s{i}", DATASET, PrivacyLoss(10), "h")
            ok = True
        except StudyRefused:
            ok = False
        with lock:
            outcomes.append(ok)

    # Execute
    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Assert
    assert sum(outcomes) == 5 and len(outcomes) == 20
    assert NodeLedger(path).spent(DATASET) == PrivacyLoss(50)


def test_a_round_is_released_once(tmp_path: Path) -> None:
    ledger = NodeLedger(tmp_path / "ledger.sqlite")
    ledger.record_release("s1", DATASET, 1, 1234.5)
    with pytest.raises(StudyRefused, match="already released") as refused:
        ledger.record_release("s1", DATASET, 1, 99.0)
    assert refused.value.reason_code == RefusalCode.ALREADY_RELEASED
    assert ledger.noisy_count("s1", DATASET) == 1234.5
