"""A Flower SuperNode whose ClientApp stays warm: ``python -m nodes.flower_node <flower-supernode args>``.

Flower 1.41 answers every message by starting a new ``flwr-clientapp`` process (1.3 s of imports
before any work, several competing for two cores) and lets an idle SuperNode sleep a hard-coded
3 s between polls of the SuperLink; together they cost seconds per round. This entry point runs
Flower's own SuperNode (``flower_supernode``, unchanged, TLS and node authentication as
configured) in ``--isolation process`` mode, and serves its tasks from a thread in the same process
through Flower's Runtime API — acquire a task, pull its message, call the node's installed
ClientApp, push the reply and the task's status — exactly the steps of ``flwr-clientapp``, without
a process per message. Side effects:

- the node executes only the Tillit ClientApp installed with it, never code from a FAB: a run of any
  other app is answered with an error;
- the SuperNode's idle poll adapts: it waits 5 % of the time since its last message, at least
  ``TILLIT_NODE_POLL_SECONDS`` (0.1 s) and at most 2 s — fast within a study's rounds, quiet on a
  node that no running study uses (two cores shared by seven idle nodes polling at 10 Hz slowed
  the demo's model by a third);
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
from logging import ERROR, INFO
from typing import Any

__all__ = ["main"]

#: the fab_id under which `flwr run` ships Tillit's app (publisher/name in federation/flower_app)
TILLIT_FAB_ID = "tillit/tillit-study"
_LATENCY_SHARE = 0.05
_IDLE_CEILING = 2.0


class _AdaptivePoll:
    """Stands in for ``time`` in Flower's SuperNode loop: short sleeps while studies are running.

    It also tells the ClientApp thread when a message has been stored (``stored``), so that the
    thread acquires a task only once the message's objects are in the SuperNode's store — acquiring
    earlier makes Flower's object pull back off for a second.
    """

    def __init__(self, fast: float) -> None:
        self.fast = fast
        self.last_activity = time.monotonic()
        self.stored = threading.Event()
        self.replied = threading.Event()

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def interval(self, seconds: float, now: float | None = None) -> float:
        """How long Flower's ``sleep(seconds)`` really sleeps: 5 % of the time since the last message,
        between ``fast`` and 2 s — a running study's next message waits at most 5 % of a round longer,
        and a node that no study uses polls every 2 s."""
        idle = (time.monotonic() if now is None else now) - self.last_activity
        return min(seconds, _IDLE_CEILING, max(self.fast, _LATENCY_SHARE * idle))

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
        run_id = pull(*args, **kwargs)
        if run_id is not None:
            poll.touch()
            poll.stored.set()
        return run_id

    loop.time = poll   # type: ignore[assignment,attr-defined]
    loop._pull_and_store_message = pull_and_note


def _runtime_client(address: str, component: str, token: str | None = None) -> Any:
    from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    interceptors: list[Any] = [RuntimeVersionHttpInterceptor(component_name=component)]
    if token is not None:
        interceptors.append(RuntimeTokenHttpInterceptor(token))
    return RuntimeHttpClient.from_server_address(server_address=address, insecure=True, root_certificates=None,
                                                 interceptors=interceptors,
                                                 retry_invoker=make_simple_http_retry_invoker())


def _serve_task(address: str, token: str, replied: threading.Event) -> None:
    """One task, as ``flwr-clientapp`` would run it, with the installed ClientApp."""
    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode, SubStatus
    from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
    from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

    from federation.client_app import app

    client = _runtime_client(address, "flwr-clientapp", token)
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
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
            client.close()


def _serve_tasks(address: str, poll: _AdaptivePoll) -> None:
    """Acquire and serve ClientApp tasks until the process ends (a daemon thread)."""
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore import log
    from flwr.supercore.constant import TaskType

    client = None
    while client is None:
        try:
            client = _runtime_client(address, "SuperExec")
        except Exception:   # the SuperNode's Runtime API is not up yet
            time.sleep(0.1)
    log(INFO, "Tillit: serving ClientApp tasks in-process from %s", address)
    while True:
        # wake when the SuperNode has stored a message (or every few seconds, in case one was missed)
        poll.stored.wait(timeout=5.0)
        poll.stored.clear()
        try:
            acquired = client.AcquireTask(AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP],
                                                             agentapp_fab_hashes=[]))
        except Exception as error:   # the SuperNode restarting or shutting down
            log(ERROR, "Tillit: acquiring a task failed (%s); retrying", type(error).__name__)
            time.sleep(1.0)
            continue
        if acquired.HasField("task") and acquired.token:
            try:
                _serve_task(address, acquired.token, poll.replied)
            except Exception as error:   # e.g. the SuperNode went away mid-push; Flower expires the task
                log(ERROR, "Tillit: a ClientApp task could not be completed (%s)", type(error).__name__)
            poll.stored.set()   # look again at once: another message may be waiting


def _runtime_address(argv: list[str]) -> str:
    port = "9094"
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            port = argv[i + 1]
        elif arg.startswith("--port="):
            port = arg.split("=", 1)[1]
    return f"127.0.0.1:{port}"


def main() -> None:
    argv = sys.argv[1:]
    if "--isolation" in argv:
        raise SystemExit("nodes.flower_node sets --isolation itself")
    from federation.flower_tuning import shorten_object_pull_backoff

    poll = _AdaptivePoll(float(os.environ.get("TILLIT_NODE_POLL_SECONDS", "0.1")))
    _tune_supernode_loop(poll)
    shorten_object_pull_backoff()
    threading.Thread(target=_serve_tasks, args=(_runtime_address(argv), poll), name="tillit-clientapp",
                     daemon=True).start()
    sys.argv = ["flower-supernode", *argv, "--isolation", "process", "--host", "127.0.0.1"]
    from flwr.supernode.cli.flower_supernode import flower_supernode

    flower_supernode()


if __name__ == "__main__":
    main()
