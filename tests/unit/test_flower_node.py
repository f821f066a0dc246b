"""The warm SuperNode's timing: fast polls while studies run, backing off when idle."""

from __future__ import annotations

import time

import pytest

from nodes.flower_node import _AdaptivePoll


def test_polls_fast_after_a_message_and_backs_off_when_idle() -> None:
    # Prepare
    poll = _AdaptivePoll(fast=0.1)
    poll.touch()
    start = poll.last_activity
    # Execute
    within_a_round = poll.interval(3.0, now=start + 1)
    ten_seconds_on = poll.interval(3.0, now=start + 10)
    long_idle = poll.interval(3.0, now=start + 3600)
    # Assert: 5 % of the wait so far, between the fast floor and 2 s, never longer than Flower asked
    assert within_a_round == 0.1
    assert abs(ten_seconds_on - 0.5) < 1e-9
    assert long_idle == 2.0
    assert poll.interval(0.05, now=start + 3600) == 0.05


def test_object_pull_backoff_is_shortened_in_this_process_only_where_flower_defines_it() -> None:
    # Prepare
    from flwr.supercore.inflatable import inflatable_utils

    from federation.flower_tuning import shorten_object_pull_backoff

    pulls = (inflatable_utils.pull_objects, inflatable_utils.pull_and_inflate_object_from_tree)
    saved = [dict(pull.__kwdefaults__ or {}) for pull in pulls]
    try:
        # Execute
        shorten_object_pull_backoff(initial=0.02, cap=0.25)
        # Assert
        for pull in pulls:
            assert pull.__kwdefaults__ is not None
            assert (pull.__kwdefaults__["initial_backoff"], pull.__kwdefaults__["backoff_cap"]) == (0.02, 0.25)
    finally:
        for pull, defaults in zip(pulls, saved):
            assert pull.__kwdefaults__ is not None
            pull.__kwdefaults__.update(defaults)


def test_a_pull_of_objects_that_never_arrive_gives_up_at_the_given_time() -> None:
    # Prepare: an object whose upload never completes (its sender was killed mid-push)
    import time

    from flwr.supercore.inflatable import inflatable_utils
    from flwr.supercore.inflatable.inflatable_utils import ObjectPullError, ObjectUnavailableError

    from federation.flower_tuning import shorten_object_pull_backoff

    def never(object_id: str) -> bytes:
        raise ObjectUnavailableError(object_id)

    saved = dict(inflatable_utils.pull_objects.__kwdefaults__ or {})
    try:
        shorten_object_pull_backoff(initial=0.02, cap=0.05, max_time=0.5)
        started = time.monotonic()
        # Execute
        with pytest.raises(ObjectPullError):
            inflatable_utils.pull_objects(["missing"], never)
        # Assert: given up after max_time, where Flower's default (500 tries) would wait ~25 s at this cap
        assert time.monotonic() - started < 5.0
    finally:
        assert inflatable_utils.pull_objects.__kwdefaults__ is not None
        inflatable_utils.pull_objects.__kwdefaults__.update(saved)


class _State:
    """Just the NodeState call the shim makes itself: resolving a task token."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens

    def get_task_by_token(self, token: str) -> str | None:
        return self.tokens.get(token)


def test_in_process_runtime_calls_flowers_handler_with_the_tokens_task(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: record what Flower's PullObject handler is given
    from flwr.supernode.servicer.runtime import runtime_handlers

    from nodes.flower_node import _InProcessRuntime

    calls = []
    monkeypatch.setattr(runtime_handlers, "pull_object", lambda request, state, task: calls.append((request, task)))
    state = _State({"good-token": "task-7"})
    # Execute
    _InProcessRuntime(state, "good-token").PullObject("request")
    # Assert: the same handler the HTTP route calls, with the task the token names
    assert calls == [("request", "task-7")]


@pytest.mark.parametrize("token", [None, "stale-token"])
def test_in_process_runtime_refuses_a_call_without_a_live_task_token(token: str | None) -> None:
    from nodes.flower_node import _InProcessRuntime

    runtime = _InProcessRuntime(_State({"good-token": "task-7"}), token)
    with pytest.raises(PermissionError, match="task-token"):
        runtime.PushMessages("request")
    with pytest.raises(AttributeError):
        getattr(runtime, "GetConnector")   # not a ClientApp call: not offered


def test_within_steady_rounds_the_first_poll_waits_most_of_a_round() -> None:
    # Prepare: messages stored one second apart (a study's rounds)
    poll = _AdaptivePoll(fast=0.1)
    start = poll.last_activity
    for k in (1, 2):
        poll.touch(now=start + k)
    # Execute
    just_after = poll.interval(3.0, now=start + 2.05)
    late = poll.interval(3.0, now=start + 2.8)
    # Assert: quiet until 70 % of a round after the last message, then the fast floor
    assert abs(just_after - 0.65) < 1e-9
    assert late == 0.1


def test_a_pause_between_studies_does_not_make_the_next_study_wait() -> None:
    # Prepare: one quick exchange, then a minute of nothing before the next message
    poll = _AdaptivePoll(fast=0.1)
    start = poll.last_activity
    poll.touch(now=start + 1)
    poll.touch(now=start + 61)
    # Execute / Assert: no quiet period after the pause
    assert poll.interval(3.0, now=start + 61.01) == 0.1


def test_a_message_picked_up_late_does_not_make_the_node_look_late_for_the_next() -> None:
    # Prepare: the ServerApp makes a message every second (its clock 1000 s off this node's);
    # this node stored the first two 0.05 s after they were made, the third 0.5 s late
    poll = _AdaptivePoll(fast=0.1)
    for made, stored in ((1000.0, 10.05), (1001.0, 11.05), (1002.0, 12.55)):
        poll.touch(now=stored, created_at=made)
    # Execute
    quiet = poll.quiet(now=12.6)
    # Assert: quiet until 70 % of a round after the third message could have been here (12.05 + 0.7),
    # not after this node stored it (12.55 + 0.7)
    assert abs(quiet - 0.15) < 1e-9


def test_rounds_are_timed_on_the_serverapps_clock_when_messages_say_when_they_were_made() -> None:
    # Prepare: made one second apart, stored irregularly (0.4 s late, then on time)
    poll = _AdaptivePoll(fast=0.1)
    for made, stored in ((50.0, 5.05), (51.0, 6.45), (52.0, 7.05)):
        poll.touch(now=stored, created_at=made)
    # Execute / Assert: both rounds are one second, not 1.4 s and 0.6 s
    assert poll.cycles == pytest.approx((1.0, 1.0))


def test_the_supernode_loop_sends_no_request_while_the_next_message_cannot_be_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: Flower's pull, recorded; a node in steady one-second rounds, just after a message
    import flwr.supernode.start_client_internal as loop

    from nodes.flower_node import _tune_supernode_loop

    class _Metadata:
        created_at = 102.0

    class _Message:
        metadata = _Metadata()

    pulls: list[object] = []

    def flower_pull(**kwargs: object) -> int | None:
        pulls.append(kwargs)
        got = kwargs["receive"]()  # type: ignore[operator]
        return None if got is None else 7

    monkeypatch.setattr(loop, "_pull_and_store_message", flower_pull)
    monkeypatch.setattr(loop, "time", loop.time)
    poll = _AdaptivePoll(fast=0.1)
    now = time.monotonic()
    for k, made in enumerate((99.0, 100.0, 101.0)):
        poll.touch(now=now - 2.05 + k, created_at=made)   # the last one stored 0.05 s ago
    _tune_supernode_loop(poll)
    # Execute: Flower's loop looks right after a reply, then again once the quiet window is over
    during_quiet = loop._pull_and_store_message(receive=lambda: (_Message(), None), state="node-state")
    poll.available -= 1.0   # as if the window had passed
    after_quiet = loop._pull_and_store_message(receive=lambda: (_Message(), None), state="node-state")
    # Assert: no request within the window; afterwards one, and its message's making time is noted
    assert during_quiet is None
    assert len(pulls) == 1 and after_quiet == 7
    assert poll._created == 102.0 and poll.state == "node-state"
