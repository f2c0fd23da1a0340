"""Low-priority mode: how a host that serves production traffic fetches models. Pure.

In low-priority mode the client's caps drop to the lower of its normal caps and the low-priority
caps, and its peer connections carry a DSCP mark (CS1 by default, the "lower effort" class most
datacenter QoS policies queue behind everything else). The mode is on with the ``low_priority``
setting, or while the file ``<root>/low-priority`` exists (``modeltorrent client priority low``),
which a serving process can create and remove as its load comes and goes; a running fetch picks
the change up within a status interval.
"""

from __future__ import annotations

from client.settings import ClientSettings
from common.lt_session import Caps

MARKER = "low-priority"


def _lower(normal: int, low: int) -> int:
    """The lower of two caps where 0 means unlimited."""
    if normal == 0 or low == 0:
        return normal or low
    return min(normal, low)


def caps(settings: ClientSettings, low: bool) -> Caps:
    if not low:
        return Caps(settings.upload_rate, settings.download_rate, settings.connections, settings.dscp,
                    settings.upload_slots)
    return Caps(_lower(settings.upload_rate, settings.low_priority_upload_rate),
                _lower(settings.download_rate, settings.low_priority_download_rate),
                _lower(settings.connections, settings.low_priority_connections),
                settings.low_priority_dscp, settings.upload_slots)


def share(caps: Caps, sessions: int) -> Caps:
    """Each of ``sessions`` sessions' part of the host's caps: rates and connections split, the
    DSCP mark and the upload slots (each session's own choker) as they are."""
    if sessions == 1:
        return caps
    return Caps(caps.upload_rate // sessions if caps.upload_rate else 0,
                caps.download_rate // sessions if caps.download_rate else 0,
                max(8, caps.connections // sessions), caps.dscp, caps.upload_slots)


def listen_of(listen: str, index: int) -> str:
    """The listen address of session ``index``: the next ports after the configured one (port 0:
    any for each)."""
    host, _, port = listen.rpartition(":")
    return listen if index == 0 or port in ("", "0") else f"{host}:{int(port) + index}"
