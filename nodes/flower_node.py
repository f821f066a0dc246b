"""A Flower SuperNode whose ClientApp stays warm: ``python -m nodes.flower_node <flower-supernode args>``.

Flower 1.41 answers every message by starting a new ``flwr-clientapp`` process (1.3 s of imports
before any work, several competing for two cores) and lets an idle SuperNode sleep a hard-coded
3 s between polls of the SuperLink; together they cost seconds per round. This entry point runs
Flower's own SuperNode (``flower_supernode``, unchanged, TLS and node authentication as
configured) in ``--isolation process`` mode, and serves its tasks from a thread in the same process
through Flower's Runtime API — acquire a task, pull its message, call the node's installed
ClientApp, push the reply and the task's status — exactly the steps of ``flwr-clientapp``, without
a process per message. The thread calls the Runtime API's own handlers on the SuperNode's state,
with the same protobuf requests and the same task-token check, rather than over loopback HTTP: a
message takes a dozen Runtime calls, 10-20 ms each over HTTP on a busy machine. Side effects:

- the node executes only the Tillit ClientApp installed with it, never code from a FAB: a run of any
  other app is answered with an error;
- the SuperNode's idle poll adapts: it waits 5 % of the time since its last message, at least
  ``TILLIT_NODE_POLL_SECONDS`` (0.1 s) and at most 2 s — fast within a study's rounds, quiet on a
  node that no running study uses (two cores shared by seven idle nodes polling at 10 Hz slowed
  the demo's model by a third); within steady rounds it sends no poll before 70 % of a round has
  passed since the last message could have arrived (rounds timed on the ServerApp's clock, from
  the messages' ``created_at``), not even the one Flower's loop makes right after each reply;
- the ClientApp thread does not poll: it is woken when the SuperNode has stored a message, and
  the SuperNode, waiting for the reply, is woken as soon as the thread has handed it over;
- object pulls retry after 20 ms instead of 1 s (:mod:`federation.flower_tuning`).

The Flower internals used here are pinned by ``flwr==1.41.*`` in pyproject.toml and exercised by
the integration tests; a Flower upgrade must re-check them.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from logging import ERROR, INFO
from typing import Any

from federation.flower_tuning import poll_interval, shorten_object_pull_backoff

__all__ = ["main"]

#: the fab_id under which `flwr run` ships Tillit's app (publisher/name in federation/flower_app)
TILLIT_FAB_ID = "tillit/tillit-study"
_IDLE_CEILING = 2.0
#: within a study's rounds, the next message is not looked for before this share of a round...
_QUIET_SHARE = 0.7
#: ...where a round is the shorter of the last two times between messages, if both are below this
_ROUND_LIMIT = 5.0
#: messages over which the shortest make-to-store gap is taken (a study's recent rounds)
_GAP_WINDOW = 8


class _AdaptivePoll:
    """Stands in for ``time`` in Flower's SuperNode loop: short sleeps while studies are running.

    It also tells the ClientApp thread when a message has been stored (``stored``), so that the
    thread acquires a task only once the message's objects are in the SuperNode's store — acquiring
    earlier makes Flower's object pull back off for a second; and the SuperNode when the thread has
    handed over a reply (``replied``), so that it sends the reply at once.
    """

    def __init__(self, fast: float) -> None:
        self.fast = fast
        self.last_activity = time.monotonic()
        self.stored = threading.Event()
        self.replied = threading.Event()
        #: the last two times between messages (0 for a pause longer than a round)
        self.cycles = (0.0, 0.0)
        #: when the last message became available here (monotonic), at the latest when it was stored
        self.available = self.last_activity
        #: the ServerApp's ``created_at`` of the last message, and recent (stored - created_at) gaps
        self._created: float | None = None
        self._gaps: deque[float] = deque(maxlen=_GAP_WINDOW)
        #: the SuperNode's NodeState, known once it has stored a message
        self.state: Any = None

    def touch(self, now: float | None = None, created_at: float | None = None) -> None:
        """A message has been stored (``now``, monotonic); the ServerApp made it at ``created_at``.

        Rounds are timed on the ServerApp's clock when it says when it made a message: the time
        between two messages' ``created_at``, and each message's arrival taken as its ``created_at``
        plus the shortest recent gap between making and storing (transport, and the clocks' offset —
        only differences are used, so clock skew does not matter). A node that picked one message up
        late therefore does not look for the next one late too: its quiet window starts when the
        message could have been here, not when this node happened to store it."""
        now = time.monotonic() if now is None else now
        made = created_at if created_at is not None and created_at > 0 else None
        cycle = made - self._created if made is not None and self._created is not None else now - self.last_activity
        self.cycles = (self.cycles[1], cycle if 0 < cycle < _ROUND_LIMIT else 0.0)
        self.last_activity, self._created = now, made
        if made is not None:
            self._gaps.append(now - made)
        self.available = now if made is None else min(now, made + min(self._gaps))

    def interval(self, seconds: float, now: float | None = None) -> float:
        """How long Flower's ``sleep(seconds)`` really sleeps: 5 % of the time since the last message,
        between ``fast`` and 2 s — a running study's next message waits at most 5 % of a round longer,
        and a node that no study uses polls every 2 s. While messages come at a steady pace (a study's
        rounds), the next one is not looked for before 70 % of a round has passed since the last: the
        other nodes have not answered yet, and each poll is a request the SuperLink answers on cores
        the nodes share. (Waiting for this node's own reply, the sleep ends as soon as it is ready.)"""
        now = time.monotonic() if now is None else now
        wait = max(poll_interval(now - self.last_activity, self.fast), self.quiet(now))
        return min(seconds, _IDLE_CEILING, wait)

    def quiet(self, now: float | None = None) -> float:
        """Seconds left before the next message is worth looking for (0 outside steady rounds)."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.available + _QUIET_SHARE * min(self.cycles) - now)

    def sleep(self, seconds: float) -> None:
        # a reply ends the wait at once: the SuperNode sends it without waiting out its poll
        if self.replied.wait(self.interval(seconds)):
            self.replied.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _tune_supernode_loop(poll: _AdaptivePoll) -> None:
    import flwr.supernode.start_client_internal as loop

    pull = loop._pull_and_store_message

    def pull_and_note(*args: Any, **kwargs: Any) -> Any:
        # Flower's loop looks again right after sending a reply; within steady rounds the next
        # message cannot be there yet (the other nodes are still computing): no request, just wait
        if poll.quiet() > 0:
            return None
        made: list[float] = []
        receive = kwargs.get("receive")
        if receive is not None:
            def noting_receive() -> Any:
                got = receive()
                if got is not None:
                    made.append(got[0].metadata.created_at)
                return got

            kwargs["receive"] = noting_receive
        run_id = pull(*args, **kwargs)
        if run_id is not None:
            poll.state = kwargs["state"]
            poll.touch(created_at=made[-1] if made else None)
            poll.stored.set()
        return run_id

    loop.time = poll   # type: ignore[assignment,attr-defined]
    loop._pull_and_store_message = pull_and_note


class _InProcessRuntime:
    """Flower's Runtime API for ClientApp tasks, answered by its own handlers on the SuperNode's
    ``NodeState`` — what the SuperNode's HTTP routes do after authenticating the task token."""

    #: Runtime RPC -> handler in ``flwr.supernode.servicer.runtime.runtime_handlers`` (task-bound)
    _TASK_CALLS = {"PullTaskInput": "pull_task_input", "PushTaskOutput": "push_task_output",
                   "PullMessages": "pull_messages", "PushMessages": "push_messages",
                   "PullObject": "pull_object", "PushObject": "push_object",
                   "ConfirmMessageReceived": "confirm_message_received"}

    def __init__(self, state: Any, token: str | None = None) -> None:
        self.state = state
        self.token = token

    def AcquireTask(self, request: Any) -> Any:  # noqa: N802 - Flower's RPC name
        from flwr.supernode.servicer.runtime import runtime_handlers

        return runtime_handlers.acquire_task(request, self.state)

    def SendTaskHeartbeat(self, request: Any) -> Any:  # noqa: N802
        from flwr.supercore.servicer.runtime import runtime_handlers

        return runtime_handlers.send_task_heartbeat(request, self.state, self._task())

    def _task(self) -> Any:
        task = self.state.get_task_by_token(self.token) if self.token else None
        if task is None:
            raise PermissionError("Runtime task-token authentication failed")
        return task

    def __getattr__(self, rpc: str) -> Callable[[Any], Any]:
        if rpc not in self._TASK_CALLS:
            raise AttributeError(rpc)
        from flwr.supernode.servicer.runtime import runtime_handlers

        handler = getattr(runtime_handlers, self._TASK_CALLS[rpc])
        return lambda request: handler(request, self.state, self._task())


def _heartbeat(runtime: _InProcessRuntime) -> Callable[[], bool]:
    from flwr.proto.runtime_pb2 import SendTaskHeartbeatRequest
    from flwr.supercore import log

    def beat() -> bool:
        if not runtime.SendTaskHeartbeat(SendTaskHeartbeatRequest()).success:
            log(ERROR, "Tillit: the SuperNode no longer holds this task (heartbeat refused)")
        return True

    return beat


def _serve_task(runtime: _InProcessRuntime, replied: threading.Event) -> None:
    """One task, as ``flwr-clientapp`` would run it, with the installed ClientApp."""
    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode, SubStatus
    from flwr.supercore.heartbeat import HeartbeatSender
    from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

    from nodes.client_app import app

    client: Any = runtime   # stands in for Flower's RuntimeHttpClient: the same RPC methods

    heartbeat = HeartbeatSender(_heartbeat(runtime))
    heartbeat.start()
    message = reply = context = None
    status, details = SubStatus.FAILED, "ClientApp task failed"
    try:
        message, context, run, _ = pull_task_input(client)
        if run.fab_id != TILLIT_FAB_ID:
            reply = Message(Error(code=ErrorCode.LOAD_CLIENT_APP_EXCEPTION,
                                  reason=f"this node runs only {TILLIT_FAB_ID}, not {run.fab_id}"), reply_to=message)
            details = "refused: not the Tillit app"
        else:
            reply = app(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
    except Exception as error:   # Flower's own runner answers the same way; the ClientApp never raises with data
        from flwr.supercore import log

        log(ERROR, "ClientApp task failed: %s", type(error).__name__)
        if message is not None:
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=type(error).__name__),
                            reply_to=message)
    finally:
        try:
            if reply is not None and context is not None:
                push_message(client, reply, context)
                replied.set()
            push_task_output(client=client, context=context, sub_status=status, details=details)
        finally:
            heartbeat.stop()


def _serve_tasks(poll: _AdaptivePoll) -> None:
    """Acquire and serve ClientApp tasks until the process ends (a daemon thread)."""
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore import log
    from flwr.supercore.constant import TaskType

    log(INFO, "Tillit: serving ClientApp tasks in-process")
    while True:
        # wake when the SuperNode has stored a message (or every few seconds, in case one was missed)
        poll.stored.wait(timeout=5.0)
        poll.stored.clear()
        if poll.state is None:   # no message stored yet
            continue
        try:
            acquired = _InProcessRuntime(poll.state).AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP], agentapp_fab_hashes=[]))
        except Exception as error:   # the SuperNode shutting down
            log(ERROR, "Tillit: acquiring a task failed (%s); retrying", type(error).__name__)
            time.sleep(1.0)
            continue
        if acquired.HasField("task") and acquired.token:
            try:
                _serve_task(_InProcessRuntime(poll.state, acquired.token), poll.replied)
            except Exception as error:   # e.g. the task expired mid-push; Flower cleans it up
                log(ERROR, "Tillit: a ClientApp task could not be completed (%s)", type(error).__name__)
            poll.stored.set()   # look again at once: another message may be waiting


def main() -> None:
    argv = sys.argv[1:]
    if "--isolation" in argv:
        raise SystemExit("nodes.flower_node sets --isolation itself")
    poll = _AdaptivePoll(float(os.environ.get("TILLIT_NODE_POLL_SECONDS", "0.1")))
    _tune_supernode_loop(poll)
    shorten_object_pull_backoff()
    threading.Thread(target=_serve_tasks, args=(poll,), name="tillit-clientapp", daemon=True).start()
    sys.argv = ["flower-supernode", *argv, "--isolation", "process", "--host", "127.0.0.1"]
    from flwr.supernode.cli.flower_supernode import flower_supernode

    flower_supernode()


if __name__ == "__main__":
    main()
