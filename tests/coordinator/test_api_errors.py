"""Every error the coordinator answers has one shape, ``{"error": code, "detail": one line}``, whoever raises it:
an unknown route, a method a route does not take, a body too large or unreadable, an invalid parameter, a bug.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from coordinator.app import MAX_BODY_BYTES
from tests.coordinator.conftest import World


def _assert_error_body(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error", "detail"} and body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"] and "\n" not in body["detail"]
    return str(body["detail"])


def test_an_unknown_route_is_a_not_found_error_body(world: World) -> None:
    # Execute
    answer = world.client.get("/v1/no-such-thing", headers=world.headers("admin"))
    # Assert
    assert "endpoint" in _assert_error_body(answer, 404, "not_found")


def test_a_method_a_route_does_not_take_is_a_405_error_body_with_allow(world: World) -> None:
    answer = world.client.delete("/v1/me", headers=world.headers("admin"))
    _assert_error_body(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET"


def test_an_invalid_body_is_a_422_error_body_naming_the_field(world: World) -> None:
    answer = world.client.put("/v1/budgets/espoo/health_care/2024", json={"epsilon": "lots"},
                              headers=world.headers("officer"))
    assert _assert_error_body(answer, 422, "invalid_request").startswith("body.epsilon:")


def test_a_body_that_cannot_be_parsed_is_a_400_error_body(world: World) -> None:
    # Prepare: JSON with an integer of 5,000 digits (Python refuses to convert it)
    content = b'{"epsilon": ' + b"1" * 5000 + b"}"
    # Execute
    answer = world.client.put("/v1/budgets/espoo/health_care/2024", content=content,
                              headers={**world.headers("officer"), "Content-Type": "application/json"})
    # Assert
    _assert_error_body(answer, 400, "invalid_request")
    assert world.client.get("/v1/budgets", headers=world.headers("officer")).json() == []


def test_a_declared_body_over_the_limit_is_refused_413_before_it_is_read(world: World) -> None:
    # Prepare: a study draft padded past 1 MiB
    draft = world.draft("too-large")
    padded = {**draft, "purpose": "x" * MAX_BODY_BYTES}
    # Execute
    answer = world.client.post("/v1/studies", json=padded, headers=world.headers("analyst"))
    # Assert
    assert "1 MiB" in _assert_error_body(answer, 413, "request_too_large")
    assert world.client.get("/v1/studies", headers=world.headers("analyst")).json() == []


def test_a_streamed_body_over_the_limit_is_refused_413(world: World) -> None:
    # Prepare: no Content-Length; the body arrives in chunks
    def chunks() -> Iterator[bytes]:
        yield b'{"purpose": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    # Execute
    answer = world.client.post("/v1/studies", content=chunks(),
                               headers={**world.headers("analyst"), "Content-Type": "application/json"})
    # Assert
    _assert_error_body(answer, 413, "request_too_large")


def test_a_body_at_the_limit_is_read(world: World) -> None:
    # Prepare: exactly MAX_BODY_BYTES of JSON (valid JSON, not a valid draft)
    head, tail = b'{"pad": "', b'"}'
    content = head + b"x" * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert len(content) == MAX_BODY_BYTES
    # Execute
    answer = world.client.post("/v1/studies", content=content,
                               headers={**world.headers("analyst"), "Content-Type": "application/json"})
    # Assert: read and validated, not refused for its size
    _assert_error_body(answer, 422, "invalid_request")


@pytest.mark.parametrize("value", ["20%0024", "2024%0D%0AX-Injected:%201", "x" * 15_000, "2031%3Fx=1"],
                         ids=["nul", "crlf", "15000-chars", "query"])
def test_a_malformed_period_is_a_422_and_nothing_is_stored(world: World, value: str) -> None:
    # Execute
    budget = world.client.put(f"/v1/budgets/espoo/health_care/{value}", json={"epsilon": 1},
                              headers=world.headers("officer"))
    cap = world.client.put(f"/v1/caps/espoo/{value}", json={"epsilon": 1}, headers=world.headers("admin"))
    # Assert
    assert _assert_error_body(budget, 422, "invalid_request").startswith("path.period:")
    assert _assert_error_body(cap, 422, "invalid_request").startswith("path.period:")
    assert world.client.get("/v1/budgets", headers=world.headers("admin")).json() == []
    assert "X-Injected" not in budget.headers


@pytest.mark.parametrize("value", ["esp%00oo", "espoo%0D%0A", "e" * 15_000], ids=["nul", "crlf", "15000-chars"])
def test_a_malformed_municipality_or_sector_is_a_422_and_nothing_is_stored(world: World, value: str) -> None:
    answers = [world.client.put(f"/v1/budgets/{value}/health_care/2024", json={"epsilon": 1},
                                headers=world.headers("officer")),
               world.client.put(f"/v1/budgets/espoo/{value}/2024", json={"epsilon": 1},
                                headers=world.headers("officer")),
               world.client.put(f"/v1/caps/{value}/2024", json={"epsilon": 1}, headers=world.headers("admin"))]
    details = [_assert_error_body(a, 422, "invalid_request") for a in answers]
    assert all(d.startswith("path.") and value[:20] not in d for d in details)
    assert world.client.get("/v1/budgets", headers=world.headers("admin")).json() == []


def test_a_bug_is_a_500_error_body_that_says_nothing_about_it(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the ledger's balances fail in a way no one planned for
    from coordinator.routes import budgets

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(budgets, "balances", broken)
    client = TestClient(world.app, raise_server_exceptions=False)
    # Execute
    answer = client.get("/v1/budgets", headers=world.headers("officer"))
    # Assert
    assert "secret internals" not in _assert_error_body(answer, 500, "internal_error")


def test_every_operation_that_takes_a_body_documents_413(world: World) -> None:
    document = world.client.get("/openapi.json").json()
    operations = [op for methods in document["paths"].values() for op in methods.values() if "requestBody" in op]
    assert len(operations) >= 5 and all("413" in op["responses"] for op in operations)
