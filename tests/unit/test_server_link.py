"""The ServerApp's exchanges: quiet while nodes compute, never far behind a reply, and a lost node named.

Time is simulated (a clock that advances only when the link sleeps), so the assertions are exact and do
not depend on how busy the machine is.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import federation.server_app as server_app
from federation.server_app import StudyFailed, _Link


@pytest.fixture(autouse=True)
def _no_flower_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower builds a Message only inside a run; these tests need the link's logic, not Flower's objects."""
    monkeypatch.setattr(server_app, "_message", lambda content, node: SimpleNamespace(content=content, node=node))
    monkeypatch.setattr(server_app, "_bytes", lambda message: 0)


class _SimulatedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def _reply(to: str, error: int | None = None) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=to), has_error=lambda: error is not None,
                           error=SimpleNamespace(code=error, reason="node unavailable"), content=None)


class _Grid:
    """Nodes whose replies are ready ``ready_after[i]`` seconds after the push (inf: never); records each poll.
    ``errors[i]`` makes message i's reply a Flower error reply with that code (from the SuperLink)."""

    def __init__(self, clock: _SimulatedClock, ready_after: list[float], errors: dict[int, int] | None = None) -> None:
        self.clock, self.ready_after, self.errors = clock, ready_after, errors or {}
        self.pushed = 0.0
        self.polls: list[float] = []

    def push_messages(self, messages: list[Any]) -> list[str]:
        self.pushed = self.clock.now()
        return [f"m{i}" for i in range(len(messages))]

    def pull_messages(self, ids: set[str]) -> list[Any]:
        self.polls.append(self.clock.now() - self.pushed)
        return [_reply(f"m{i}", self.errors.get(i)) for i, ready in enumerate(self.ready_after)
                if f"m{i}" in ids and self.polls[-1] >= ready]


def _link(ready_after: list[float], errors: dict[int, int] | None = None,
          deadline: float = 300.0) -> tuple[_Link, _Grid]:
    clock = _SimulatedClock()
    grid = _Grid(clock, ready_after, errors)
    link = _Link(grid, 0.01, lambda phase, done, total: None, clock)  # type: ignore[arg-type]
    link.deadline = deadline
    return link, grid


def _requests(n: int) -> dict[str, tuple[int, Any]]:
    return {f"espoo/silo{i}": (i + 1, SimpleNamespace()) for i in range(n)}


def test_first_poll_waits_for_most_of_the_expected_round() -> None:
    # Prepare: replies ready 0.45 s after the push
    link, grid = _link([0.45, 0.45])
    # Execute: the previous round took 0.5 s
    answered, _ = link.ask(_requests(2), "round 3", expect=0.5)
    # Assert: the first poll comes at 60 % of that, not before; both replies collected
    assert grid.polls[0] == pytest.approx(0.3)
    assert set(answered) == {"espoo/silo0", "espoo/silo1"}


def test_polls_thin_out_on_a_long_wait_but_see_replies_within_a_twentieth() -> None:
    # Prepare: replies take 1.5 s (a node validating its extract on first contact)
    link, grid = _link([1.5, 1.5])
    # Execute
    answered, stats = link.ask(_requests(2), "prepare")
    # Assert: far fewer polls than one per 10 ms, and the reply seen at most 5 % (plus one floor poll) late
    assert len(answered) == 2
    assert len(grid.polls) < 0.6 * 1.5 / 0.01
    assert 1.5 <= grid.polls[-1] <= 1.5 * 1.05 + 0.01
    assert stats["seconds"] == pytest.approx(grid.polls[-1], abs=1e-4)   # rounded to 0.1 ms


def test_a_node_that_never_replies_fails_the_study_at_the_deadline_naming_it() -> None:
    # Prepare: the second node is gone
    link, grid = _link([0.2, float("inf")], deadline=30.0)
    # Execute
    with pytest.raises(StudyFailed) as failed:
        link.ask(_requests(2), "round 5")
    # Assert: at the deadline, not before and not much after; the dataset and the phase named
    assert failed.value.detail["error"]["code"] == "node_lost"
    assert "round 5: espoo/silo1: no reply within 30 s" in failed.value.detail["error"]["detail"]
    assert 30.0 * 0.95 <= grid.polls[-1] <= 30.0


def test_flowers_own_error_reply_for_a_lost_node_is_matched_to_its_dataset() -> None:
    # Prepare: the SuperLink answers for a node it no longer sees (code 5, node unavailable, src node 0)
    link, _ = _link([0.1, 0.1, 0.1], errors={2: 5})
    # Execute
    with pytest.raises(StudyFailed) as failed:
        link.ask(_requests(3), "round 2")
    # Assert
    assert "espoo/silo2: unavailable" in failed.value.detail["error"]["detail"]
    assert [d["dataset"] for d in failed.value.detail["lost"]] == ["espoo/silo2"]


def test_under_a_quorum_a_lost_node_is_dropped_and_named_and_a_refusal_still_fails() -> None:
    # Prepare: three nodes, one lost, a quorum of two
    link, _ = _link([0.1, float("inf"), 0.1], deadline=5.0)
    # Execute
    answered, _ = link.ask(_requests(3), "round 1", quorum=2)
    # Assert: the study goes on without it; the drop is on record
    assert set(answered) == {"espoo/silo0", "espoo/silo2"}
    assert link.dropped == [{"dataset": "espoo/silo1", "phase": "round 1", "reason": "no reply within 5 s"}]
    refusing, _ = _link([0.1, 0.1], errors={1: 4201})
    with pytest.raises(StudyFailed) as failed:
        refusing.ask(_requests(2), "round 1", quorum=1)
    assert failed.value.detail["refusals"][0]["dataset"] == "espoo/silo1"
