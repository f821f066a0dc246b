"""Schemathesis against the coordinator's own OpenAPI schema: no 5xx, no answer outside the schema.

Every operation is called with generated data as each role, so that requests get past
authorization into the services.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

from tests.coordinator.conftest import World, make_world

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(Path(tmp_path_factory.mktemp("openapi")) / "coordinator")


def test_no_server_error_and_no_schema_violation(api_world: World) -> None:
    # Prepare: the schema as the running app serves it; a study in every reachable state is not needed,
    # generated ids and bodies exercise the 4xx paths, the fixture's data the 2xx ones
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_world.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls = 0
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: schemathesis.Case) -> None:
            nonlocal calls
            for who in ("admin", "officer", "analyst", "node"):
                # Execute / Assert: schemathesis raises on a 5xx or an answer its schema does not allow
                case.call_and_validate(headers=api_world.headers(who), checks=CHECKS)
                calls += 1

        exercise()
    assert calls > 4 * len(operations)


_UNTYPED = ({}, {"type": "object"}, {"type": "object", "additionalProperties": True},
            {"additionalProperties": True, "type": "object", "title": "Response"})


def _says_nothing(schema: dict[str, object]) -> bool:
    bare = {k: v for k, v in schema.items() if k != "title"}
    if bare.get("type") == "array" and isinstance(bare.get("items"), dict):
        return _says_nothing(bare["items"])  # type: ignore[arg-type]
    return bare in [{k: v for k, v in u.items() if k != "title"} for u in _UNTYPED]


def test_every_operation_documents_what_its_answer_holds(api_world: World) -> None:
    # Prepare
    document = api_world.client.get("/openapi.json").json()
    # Execute: each operation's success answers and the schema of each of their media types
    untyped = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            answers = [a for code, a in operation["responses"].items() if code.startswith("2")]
            schemas = [media.get("schema", {}) for a in answers for media in a.get("content", {}).values()]
            if not schemas or any(_says_nothing(s) for s in schemas):
                untyped.append(f"{method.upper()} {path}")
    # Assert
    assert len(document["paths"]) >= 20 and untyped == []


def test_an_untyped_answer_is_noticed() -> None:
    assert _says_nothing({"type": "object", "additionalProperties": True, "title": "Response Whoami"})
    assert _says_nothing({"type": "array", "items": {"type": "object"}})
    assert not _says_nothing({"$ref": "#/components/schemas/StudyOut"})
