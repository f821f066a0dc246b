"""A study's statuses move only along the lifecycle's table, and every move is in the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from common.errors import Conflict
from coordinator.lifecycle import TRANSITIONS, StudyStatus, move
from coordinator.models import AuditEntry, Study
from coordinator.settings import parse_settings
from tests.coordinator.conftest import World


def _study(world: World, study_id: str, status: StudyStatus) -> None:
    world.client.post("/v1/studies", json=world.draft(study_id), headers=world.headers("analyst"))
    with world.coordinator.db.transaction() as session:
        study = session.get(Study, study_id)
        assert study is not None
        study.status = status.value   # the test puts a study in every state directly


@pytest.mark.parametrize("start", list(StudyStatus))
def test_only_the_tables_moves_are_allowed_and_each_is_audited(world: World, start: StudyStatus) -> None:
    for target in StudyStatus:
        # Prepare
        study_id = f"s-{start.value}-{target.value}"
        _study(world, study_id, start)
        with world.coordinator.db.transaction() as session:
            study = session.get(Study, study_id)
            assert study is not None
            # Execute / Assert
            if target in TRANSITIONS[start]:
                move(session, world.coordinator.signer, study, target, "tester", f"study.test.{target.value}")
                assert study.status == target.value
            else:
                with pytest.raises(Conflict, match=f"is {start.value}; it cannot become {target.value}"):
                    move(session, world.coordinator.signer, study, target, "tester", "study.test")
                assert study.status == start.value
        with world.coordinator.db.transaction() as session:
            actions = [e.action for e in session.execute(select(AuditEntry).where(AuditEntry.subject == study_id))
                       .scalars()]
        assert (f"study.test.{target.value}" in actions) == (target in TRANSITIONS[start])


def test_settings_come_from_options_then_the_environment(tmp_path: Path) -> None:
    # Prepare
    environ = {"TILLIT_COORDINATOR_SUPERLINK": "link.example:9092", "TILLIT_COORDINATOR_SUPERLINK_INSECURE": "true",
               "TILLIT_COORDINATOR_PORT": "9999", "TILLIT_COORDINATOR_CONTRACTS_DIRS": f"{tmp_path}/a:{tmp_path}/b"}
    # Execute
    from_env = parse_settings(environ, state_dir=tmp_path)
    from_option = parse_settings(environ, state_dir=tmp_path, port=8000)
    # Assert
    assert from_env.superlink == "link.example:9092" and from_env.superlink_insecure and from_env.port == 9999
    assert from_env.contracts_dirs == (tmp_path / "a", tmp_path / "b")
    assert from_option.port == 8000
