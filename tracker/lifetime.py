"""How long a peer stays in a swarm, and what its announces say about it. Pure: no I/O.

A peer leaves a swarm when it has not announced for a while. How long a while depends on the client:
ours announce at the tracker's interval, but stock clients have floors of their own (libtorrent
re-announces no sooner than its ``min_announce_interval``, 300 s; rtorrent clamps the interval to
300-600 s: measured with Debian's packages, DESIGN.md). A fixed 2.5 intervals (150 s) dropped a
seeding stock client from the swarm for minutes after each announce. So each peer is kept for the
longer of the tracker's TTL and 1.5 times the gap it left between its own last two announces, and a
client that is not ours is given rtorrent's longest interval until its second announce shows its
pace. Our own clients keep the short TTL: a dead one holds its rack's gateway role until it expires.
"""

from __future__ import annotations

OUR_USER_AGENT = "modeltorrent/"  # what our clients' libtorrent sends (common.lt_session.USER_AGENT)
STOCK_LONGEST_INTERVAL = 600.0  # seconds: rtorrent clamps a tracker's interval to at most this
GAP_FACTOR = 1.5  # a peer is kept for 1.5 of its own gaps: one late announce does not drop it
LONGEST_TTL = 3 * STOCK_LONGEST_INTERVAL  # a client with longer gaps is gone for a while anyway


def is_ours(user_agent: str) -> bool:
    return user_agent.startswith(OUR_USER_AGENT)


def peer_ttl(tracker_ttl: float, gap: float | None, ours: bool) -> float:
    """Seconds a peer stays after an announce. ``tracker_ttl``: interval x peer_ttl_factor;
    ``gap``: seconds since its previous announce (None: first announce, or its entry was gone)."""
    if gap is None:
        return tracker_ttl if ours else max(tracker_ttl, GAP_FACTOR * STOCK_LONGEST_INTERVAL)
    return max(tracker_ttl, min(GAP_FACTOR * gap, LONGEST_TTL))


def holds_pieces(left: int, total_size: int, torrent_size: int) -> bool:
    """Whether a peer reporting ``left`` holds at least one piece.

    Clients count a torrent's size in two ways: libtorrent, qBittorrent and Deluge report ``left``
    with the padding of each file to a piece boundary (``torrent_size``: a fresh client of a 160 MiB
    model in 64 MiB pieces reported 268,435,456), others the file data alone (``total_size``). A peer
    with nothing reports one of the two; anything less, it holds something. (A padded count of
    exactly ``total_size`` is taken for an empty peer: it can be one only by coincidence.)
    """
    return left < max(torrent_size, total_size) and left != total_size


def is_completion(left: int, previous_left: int | None, completed_event: bool) -> bool:
    """Whether this announce finishes a download, for scrape's ``downloaded``: the ``completed``
    event of a peer not yet counted, or ``left`` falling to 0 without the event (ctorrent sends none)."""
    if previous_left is None:
        return completed_event
    return previous_left > 0 and (left == 0 or completed_event)
