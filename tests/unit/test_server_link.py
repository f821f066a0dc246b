"""The ServerApp's polling for replies: quiet while nodes compute, never far behind a reply."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from federation.server_app import _Link


class _Grid:
    """Two nodes whose replies are ready ``ready_after`` seconds after the push; records each poll."""

    def __init__(self, ready_after: float) -> None:
        self.ready_after = ready_after
        self.pushed = 0.0
        self.polls: list[float] = []

    def push_messages(self, messages: list[Any]) -> list[str]:
        self.pushed = time.perf_counter()
        return ["m1", "m2"]

    def pull_messages(self, ids: set[str]) -> list[Any]:
        self.polls.append(time.perf_counter() - self.pushed)
        if self.polls[-1] < self.ready_after:
            return []
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i), has_error=lambda: True) for i in ids]


def _link(grid: _Grid) -> _Link:
    return _Link(grid, 0.01, lambda phase, done, total: None)  # type: ignore[arg-type]


def test_first_poll_waits_for_most_of_the_expected_round() -> None:
    # Prepare
    grid = _Grid(ready_after=0.45)
    # Execute: the previous round took 0.5 s
    replies, _ = _link(grid).exchange([], expect=0.5)
    # Assert: nothing asked before 60 % of that; both replies collected
    assert grid.polls[0] >= 0.3
    assert len(replies) == 2


def test_polls_thin_out_on_a_long_wait_but_see_replies_within_a_twentieth() -> None:
    # Prepare: replies take 1.5 s (a node validating its extract on first contact)
    ready_after = 1.5
    grid = _Grid(ready_after=ready_after)
    # Execute
    replies, stats = _link(grid).exchange([])
    # Assert: far fewer polls than one per 10 ms, and the reply seen at most ~5 % (plus a poll's cost) late
    assert len(replies) == 2
    assert len(grid.polls) < 0.6 * ready_after / 0.01
    assert grid.polls[-1] <= ready_after * 1.05 + 0.03
    assert stats["seconds"] >= ready_after
