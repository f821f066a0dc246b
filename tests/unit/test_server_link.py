"""The ServerApp's polling for replies: quiet while nodes compute, never far behind a reply.

Time is simulated (a clock that advances only when the link sleeps), so the assertions are exact
and do not depend on how busy the machine is.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from federation.server_app import StudyFailed, _Link


class _SimulatedClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class _Grid:
    """Two nodes whose replies are ready ``ready_after`` seconds after the push; records when each poll came."""

    def __init__(self, clock: _SimulatedClock, ready_after: float) -> None:
        self.clock = clock
        self.ready_after = ready_after
        self.pushed = 0.0
        self.polls: list[float] = []

    def push_messages(self, messages: list[Any]) -> list[str]:
        self.pushed = self.clock.now()
        return ["m1", "m2"]

    def pull_messages(self, ids: set[str]) -> list[Any]:
        self.polls.append(self.clock.now() - self.pushed)
        if self.polls[-1] < self.ready_after:
            return []
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i), has_error=lambda: True) for i in ids]


def _link(ready_after: float) -> tuple[_Link, _Grid]:
    clock = _SimulatedClock()
    grid = _Grid(clock, ready_after)
    return _Link(grid, 0.01, lambda phase, done, total: None, clock), grid  # type: ignore[arg-type]


def test_first_poll_waits_for_most_of_the_expected_round() -> None:
    # Prepare: replies ready 0.45 s after the push
    link, grid = _link(ready_after=0.45)
    # Execute: the previous round took 0.5 s
    replies, _ = link.exchange([], expect=0.5)
    # Assert: the first poll comes at 60 % of that, not before; both replies collected
    assert grid.polls[0] == pytest.approx(0.3)
    assert len(replies) == 2


def test_polls_thin_out_on_a_long_wait_but_see_replies_within_a_twentieth() -> None:
    # Prepare: replies take 1.5 s (a node validating its extract on first contact)
    link, grid = _link(ready_after=1.5)
    # Execute
    replies, stats = link.exchange([])
    # Assert: far fewer polls than one per 10 ms, and the reply seen at most 5 % (plus one floor poll) late
    assert len(replies) == 2
    assert len(grid.polls) < 0.6 * 1.5 / 0.01
    assert 1.5 <= grid.polls[-1] <= 1.5 * 1.05 + 0.01
    assert stats["seconds"] == pytest.approx(grid.polls[-1], abs=1e-4)   # rounded to 0.1 ms


def test_nodes_that_never_reply_end_the_exchange_at_its_deadline() -> None:
    link, grid = _link(ready_after=float("inf"))
    with pytest.raises(StudyFailed) as failed:
        link.exchange([], timeout=30.0)
    assert failed.value.detail["error"]["code"] == "timeout"
    assert 30.0 * 0.95 <= grid.polls[-1] < 30.0
