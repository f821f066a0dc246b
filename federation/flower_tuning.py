"""The one place where Tillit adjusts Flower 1.41's timing, for processes that run Flower's code.

Polling: Flower's processes poll each other (the SuperNode the SuperLink, the ServerApp the SuperLink
for replies). ``poll_interval`` is the rule both of Tillit's pollers use: wait 5 % of the time
already waited, never less than a floor — a reply or message is seen at most 5 % later than it
could be, and a long wait (a first validation, an idle node) costs few requests.

Flower moves a message as metadata first and its content objects after; a receiver that asks
for the objects before they have arrived backs off for 1 s, then 2 s, ... (``pull_objects``'
``initial_backoff``/``backoff_cap``). On loopback or a LAN the objects follow within milliseconds,
so the first back-off alone costs most of a round. ``shorten_object_pull_backoff`` makes the
retries start at 20 ms and cap at 250 ms, in this process only; nothing else in Flower changes.
Called by the ServerApp (in the SuperLink's ``flwr-serverapp`` process) and by
:mod:`nodes.flower_node` (in each SuperNode). Pinned to ``flwr==1.41.*``.
"""

from __future__ import annotations

__all__ = ["LATENCY_SHARE", "poll_interval", "shorten_object_pull_backoff"]

#: a poller waits this share of the time it has already waited
LATENCY_SHARE = 0.05


def poll_interval(waited: float, floor: float) -> float:
    """Seconds until the next poll, after ``waited`` seconds of waiting: 5 % of that, at least ``floor``."""
    return max(floor, LATENCY_SHARE * waited)


def shorten_object_pull_backoff(initial: float = 0.02, cap: float = 0.25, max_time: float | None = None) -> None:
    """Object pulls retry from ``initial`` seconds, never waiting more than ``cap`` between tries; with
    ``max_time``, a pull gives up after that many seconds (Flower's default: 500 tries, ~2 minutes at this cap).

    The ServerApp passes its round deadline: a node killed while uploading a reply leaves the reply's metadata
    at the SuperLink without its objects, and pulling them would otherwise block the ServerApp past every
    deadline of its own; given up, Flower answers MESSAGE_UNAVAILABLE and the node counts as lost."""
    from flwr.supercore.inflatable import inflatable_utils

    for pull in (inflatable_utils.pull_objects, inflatable_utils.pull_and_inflate_object_from_tree):
        defaults = pull.__kwdefaults__
        if defaults is None or not {"initial_backoff", "backoff_cap", "max_time"} <= set(defaults):
            raise RuntimeError(f"flwr changed {pull.__name__}'s signature; re-check federation/flower_tuning.py")
        defaults["initial_backoff"], defaults["backoff_cap"] = initial, cap
        if max_time is not None:
            defaults["max_time"] = max_time
