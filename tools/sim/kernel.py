"""The simulator's inner step, compiled with numba: who asks whom for which piece, the fair share
of every link, and the bytes that move in one step. ``tools/sim/simulate.py`` owns the model (source,
announces, peer lists) and calls ``step`` once per time step.

Compiled because it is the whole cost of a large run: 10,000 hosts keep about a million directed
connections, and a 500 GB model takes some 350,000 steps of 2.2 ms. As NumPy array expressions
the step cost 14-20 ms there; looping over only what changed costs a small fraction of that.

State lives in arrays that the caller allocates (``State``); a bitfield is ``words[node]``, piece
``q`` at bit ``q & 63`` of word ``q >> 6``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

ONE = np.uint64(1)
FULL = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class State:
    """Everything a step reads and writes; the edge arrays grow as hosts connect (``add_edges``)."""

    words: np.ndarray  # (nodes, words) uint64: the pieces each node holds
    lo: np.ndarray  # first word of a node's bitfield that is not full
    hi: np.ndarray  # last word that is not empty; -1: none
    counts: np.ndarray  # pieces held, per node
    holders: np.ndarray  # hosts holding each piece (the seedbox not counted), float for the score
    got: np.ndarray  # (nodes, pieces) bytes received of each piece
    piece_bytes: np.ndarray
    busy: np.ndarray  # transfers each node is uploading
    retry: np.ndarray  # a node's idle connections must be looked at again
    scanned: np.ndarray  # the node's count when its idle connections were last looked at
    src: np.ndarray
    dst: np.ndarray
    piece: np.ndarray  # per edge: the piece moving, -1 idle
    seen: np.ndarray  # per edge: src's count when found with nothing to move; -1 look again
    cons: np.ndarray  # (edges, 4): up, down, rack out, rack in (``none`` where not crossed)
    order: np.ndarray  # edges grouped by src
    start: np.ndarray  # order[start[u]:start[u + 1]] are u's edges
    active: np.ndarray  # the moving edges, first ``moving[0]``
    moving: np.ndarray  # (1,)
    rate: np.ndarray  # per active position, bytes/s
    cap0: np.ndarray  # per constraint, bytes/s
    finished: np.ndarray  # per node, s; NaN: not yet
    announce_at: np.ndarray
    inflight: np.ndarray  # transfers moving each piece
    sent: np.ndarray  # bytes each node has uploaded
    share: np.ndarray  # (nodes, words) uint64: the pieces each node may fetch from outside its rack
    held: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per edge: holds its uploader's slot until, s
    slot_edge: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))  # (nodes, slots)
    # libtorrent's request pipeline (Scenario.pipeline > 1): per edge, the pieces its downloader has
    # asked of that uploader beyond the one moving (``queue``, -1: none); per (node, piece), the
    # edge the piece is asked of (``owner``, -1: none), so no other peer is asked for it.
    queue: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    owner: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), dtype=np.int64))
    limit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per edge: its own rate cap, bytes/s
    busy_rate: float = math.inf
    # The reciprocal choker (``reciprocate``, set before any edge is added: off, none of this is
    # kept): per edge, its reverse edge (-1: none, the seedbox's); bytes moved on it in this
    # choker round and in the last one.
    rev: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    this_round: np.ndarray = field(default_factory=lambda: np.zeros(0))
    last_round: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reciprocate: bool = False
    edge_of: dict[tuple[int, int], int] = field(default_factory=dict)
    edges: int = 0  # edges in use; the edge arrays have room for more
    waiting: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))  # one node's edges, scratch

    @classmethod
    def empty(cls, nodes: int, pieces: int, piece_bytes: np.ndarray, cap0: np.ndarray) -> State:
        z = np.zeros
        return cls(z((nodes, (pieces + 63) // 64), dtype=np.uint64), z(nodes, dtype=np.int64),
                   np.full(nodes, -1, dtype=np.int64), z(nodes, dtype=np.int64), z(pieces), z((nodes, pieces)),
                   piece_bytes, z(nodes, dtype=np.int64), z(nodes, dtype=np.bool_), np.full(nodes, -1, dtype=np.int64),
                   z(0, dtype=np.int64), z(0, dtype=np.int64), z(0, dtype=np.int64), z(0, dtype=np.int64),
                   z((0, 4), dtype=np.int64), z(0, dtype=np.int64), z(nodes + 1, dtype=np.int64),
                   z(0, dtype=np.int64), z(1, dtype=np.int64), z(0), cap0, np.full(nodes, math.nan),
                   z(nodes), z(pieces), z(nodes), np.full((nodes + 1, (pieces + 63) // 64), FULL, dtype=np.uint64))
        # share's last row: every piece (a connection inside a rack)

    def add_edges(self, added: np.ndarray) -> None:
        """Append connections (rows: src, dst, and their four constraints), idle. The edge arrays
        grow by doubling and the grouping by src is merged, not re-sorted: hosts connect at every
        announce, and re-sorting a million edges each time was most of a 10,000-host run's start."""
        e0, e1 = self.edges, self.edges + len(added)
        if e1 > len(self.src):
            size = max(e1, 2 * len(self.src))
            for name in ("src", "dst", "piece", "seen", "active"):
                grown = np.zeros(size, dtype=np.int64)
                grown[:e0] = getattr(self, name)[:e0]
                setattr(self, name, grown)
            cons = np.zeros((size, 4), dtype=np.int64)
            cons[:e0] = self.cons[:e0]
            self.cons = cons
            self.rate = np.zeros(size)
            held = np.zeros(size)
            held[:e0] = self.held[:e0]
            self.held = held
            limit = np.full(size, math.inf)
            limit[:e0] = self.limit[:e0]
            self.limit = limit
            rev = np.full(size, -1, dtype=np.int64)
            rev[:e0] = self.rev[:e0]
            self.rev = rev
            for name in ("this_round", "last_round"):
                kept = np.zeros(size)
                kept[:e0] = getattr(self, name)[:e0]
                setattr(self, name, kept)
            queue = np.full((size, self.queue.shape[1]), -1, dtype=np.int64)
            queue[:e0] = self.queue[:e0]
            self.queue = queue
        self.src[e0:e1], self.dst[e0:e1], self.cons[e0:e1] = added[:, 0], added[:, 1], added[:, 2:]
        self.piece[e0:e1] = -1
        self.seen[e0:e1] = -1
        if self.reciprocate:  # a Python loop over every connection: only for the what-if
            for e, (u, d) in enumerate(added[:, :2].tolist(), start=e0):
                self.edge_of[(u, d)] = e
                r = self.edge_of.get((d, u), -1)
                self.rev[e] = r
                if r >= 0:
                    self.rev[r] = e
        by_src = np.argsort(added[:, 0], kind="stable")
        # Each new edge goes after its src's existing ones: the order stays by src, then by edge.
        self.order = np.insert(self.order, self.start[added[by_src, 0] + 1], e0 + by_src)
        self.start = self.start + np.concatenate([[0], np.cumsum(np.bincount(added[:, 0], minlength=len(self.counts)))])
        self.edges = e1
        most = int(np.max(np.diff(self.start)))
        if most > len(self.waiting):  # sized here, not at every step
            self.waiting = np.zeros(most, dtype=np.int64)
        self.retry[added[:, 0]] = True

    def add_piece(self, node: int, q: int, host: bool) -> None:
        _add_piece(node, q, host, self.words, self.lo, self.hi, self.counts, self.holders)

    def shared(self) -> None:
        """The pieces each node may fetch from outside its rack (``share``) have changed: what a
        connection was found to have nothing of may now be wanted."""
        self.seen[:] = -1

    def new_round(self) -> None:
        """A choker round ends: what each connection moved in it is what the next round's
        choice looks at (``reciprocate``)."""
        self.last_round[:] = self.this_round
        self.this_round[:] = 0.0

    def pipeline(self, depth: int, busy_rate: float = math.inf) -> None:
        """Let each connection ask ``depth`` pieces ahead (the one moving included); 1: one at a time.
        ``busy_rate``: bytes/s a connection moves a piece already asked of another peer at (end game)."""
        self.busy_rate = busy_rate
        self.queue = np.full((len(self.src), max(0, depth - 1)), -1, dtype=np.int64)
        self.owner = np.full(self.got.shape if depth > 1 else (1, 1), -1, dtype=np.int64)

    def step(self, now: float, dt: float, slots: int | np.ndarray, none: int, spread: bool = False,
             unchoke: float = 0.0) -> tuple[float, float, float, int]:
        """One step: idle connections pick pieces, rates are shared, bytes move, pieces end.
        ``spread``: a piece in flight counts as held in the rarity (see ``Scenario.picker``).
        ``slots``: upload slots, every node's or per node. ``unchoke``: a peer given an upload slot
        keeps it that long, s (libtorrent's choker rounds), while it wants something of the
        uploader; 0: the slot is free again after each piece.
        Returns (bytes into racks over uplinks, bytes the seedbox sent, bytes/s moving, transfers)."""
        per_node = np.broadcast_to(np.asarray(slots, dtype=np.int64), self.counts.shape)
        if self.slot_edge.shape != (len(self.counts), int(per_node.max())):
            self.slot_edge = np.full((len(self.counts), int(per_node.max())), -1, dtype=np.int64)
        return _step(now, dt, np.ascontiguousarray(per_node), none, spread, unchoke, self.reciprocate, self.rev,
                     self.this_round, self.last_round, self.queue, self.owner,
                     self.limit, self.busy_rate, self.held, self.slot_edge,
                     self.inflight, self.sent, self.share, self.words, self.lo, self.hi,
                     self.counts, self.holders, self.got, self.piece_bytes, self.busy, self.retry, self.scanned,
                     self.src, self.dst, self.piece, self.seen, self.cons, self.order, self.start, self.active,
                     self.moving, self.rate, self.cap0, self.finished, self.announce_at, self.waiting)


@njit(cache=True)
def seed(value: int) -> None:
    """Seed the compiled code's random numbers (numba keeps its own generator)."""
    np.random.seed(value)


@njit(cache=True)
def _add_piece(node: int, q: int, host: bool, words: np.ndarray, lo: np.ndarray, hi: np.ndarray,
               counts: np.ndarray, holders: np.ndarray) -> None:
    w = q >> 6
    words[node, w] |= ONE << np.uint64(q & 63)
    counts[node] += 1
    if host:
        holders[q] += 1.0
    if w > hi[node]:
        hi[node] = w
    while lo[node] < words.shape[1] and words[node, lo[node]] == FULL:
        lo[node] += 1


@njit(cache=True)
def _lowest_bit(x: np.uint64) -> int:
    return int(math.log2(float(x & (~x + ONE))))  # a power of two: exact in a float


@njit(cache=True)
def _has_something(u: int, d: int, words: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray) -> bool:
    for w in range(lo[d], hi[u] + 1):  # noqa: SIM110 (numba compiles the loop, not a generator)
        if words[u, w] & ~words[d, w] & mask[w]:
            return True
    return False


@njit(cache=True)
def _pick(u: int, d: int, words: np.ndarray, lo: np.ndarray, hi: np.ndarray, holders: np.ndarray,
          got: np.ndarray, n: int, inflight: np.ndarray, spread: bool, mask: np.ndarray, owner: np.ndarray,
          fresh: bool) -> int:
    """The piece d asks u for: one d has begun first (libtorrent finishes partial pieces), then the
    rarest fleet-wide, ties at random; never one d has asked another peer for (``owner``, with a
    pipeline). ``fresh``: only a piece d has not begun (one asked ahead: a begun one is moving
    from another peer). -1: none."""
    piped = owner.shape[0] > 1
    best, best_score = -1, math.inf
    for w in range(lo[d], hi[u] + 1):
        x = words[u, w] & ~words[d, w] & mask[w]
        while x:
            bit = _lowest_bit(x)
            x &= x - ONE
            q = w * 64 + bit
            if piped and owner[d, q] >= 0:
                continue
            if fresh and got[d, q] > 0:
                continue
            score = holders[q] + np.random.random() * 0.5
            if spread:
                score += inflight[q]
            if got[d, q] > 0:
                score -= n + 1.0
            if score < best_score:
                best, best_score = q, score
    return best


@njit(cache=True)
def _ask_ahead(e: int, u: int, d: int, queue: np.ndarray, owner: np.ndarray, words: np.ndarray, lo: np.ndarray,
               hi: np.ndarray, holders: np.ndarray, got: np.ndarray, n: int, inflight: np.ndarray, spread: bool,
               mask: np.ndarray) -> None:
    """Fill edge e's request pipeline: d asks u for its rarest pieces beyond the one moving, as
    libtorrent keeps ``request_queue_time`` seconds of requests out to each peer."""
    for k in range(queue.shape[1]):
        if queue[e, k] >= 0:
            continue
        q = _pick(u, d, words, lo, hi, holders, got, n, inflight, spread, mask, owner, True)
        if q < 0:
            return
        queue[e, k] = q
        owner[d, q] = e


@njit(cache=True)
def _next_asked(e: int, d: int, queue: np.ndarray, owner: np.ndarray, words: np.ndarray) -> int:
    """The oldest piece edge e has asked ahead for that d still lacks (another peer may have sent
    it as a busy piece), taken out of its pipeline; -1: none."""
    while queue.shape[1] and queue[e, 0] >= 0:
        q = queue[e, 0]
        for k in range(queue.shape[1] - 1):
            queue[e, k] = queue[e, k + 1]
        queue[e, queue.shape[1] - 1] = -1
        if not words[d, q >> 6] & (ONE << np.uint64(q & 63)):
            return q
        if owner[d, q] == e:
            owner[d, q] = -1
    return -1


@njit(cache=True)
def _drop_asked(e: int, d: int, queue: np.ndarray, owner: np.ndarray) -> None:
    """A choked connection's requests are void: its pieces may be asked of others."""
    for k in range(queue.shape[1]):
        q = queue[e, k]
        if q >= 0:
            owner[d, q] = -1
            queue[e, k] = -1


@njit(cache=True)
def _begin(e: int, u: int, d: int, q: int, mask: np.ndarray, piece: np.ndarray, inflight: np.ndarray,
           limit: np.ndarray, busy_rate: float, queue: np.ndarray, owner: np.ndarray, unowned: np.ndarray,
           words: np.ndarray, lo: np.ndarray, hi: np.ndarray, holders: np.ndarray, got: np.ndarray, n: int,
           spread: bool) -> None:
    """Edge e (u to d) starts moving piece ``q`` (one asked ahead) or, -1, the one d picks of u;
    with a pipeline, a busy piece (end game) when all d lacks of u is asked of others, else its own
    piece, the pipeline kept full as libtorrent keeps its requests."""
    if q < 0:
        q = _pick(u, d, words, lo, hi, holders, got, n, inflight, spread, mask, owner, False)
    busy_piece = q < 0
    if busy_piece:
        q = _pick(u, d, words, lo, hi, holders, got, n, inflight, spread, mask, unowned, False)
        limit[e] = busy_rate
    piece[e] = q
    inflight[q] += 1
    if owner.shape[0] > 1 and not busy_piece:
        owner[d, q] = e
        _ask_ahead(e, u, d, queue, owner, words, lo, hi, holders, got, n, inflight, spread, mask)


@njit(cache=True)
def _fair_rates(nact: int, active: np.ndarray, cons: np.ndarray, limit: np.ndarray, cap0: np.ndarray, none: int,
                rate: np.ndarray) -> None:
    """Each moving connection's rate, ``rate[:nact]``: approximately max-min fair over the NICs and
    uplinks it crosses (a few rounds of progressive filling), within its own ``limit``. The
    connections' constraints are gathered into one contiguous array first: each round read them
    through ``active`` from the half-million-row edge arrays (10,000 hosts: a step 1.24x faster
    with the gathering, 8.6 against 10.7 ms, side by side, docs/simulator.md)."""
    ac = np.empty((nact, 4), dtype=np.int64)
    lim = np.empty(nact)
    for i in range(nact):
        e = active[i]
        for k in range(4):
            ac[i, k] = cons[e, k]
        lim[i] = limit[e]
        rate[i] = 0.0
    cap = cap0.copy()
    count = np.zeros(len(cap), dtype=np.int64)
    give = np.zeros(nact)
    is_open = np.ones(nact, dtype=np.bool_)
    for _ in range(4):
        count[:] = 0
        for i in range(nact):
            if is_open[i]:
                for k in range(4):
                    count[ac[i, k]] += 1
        for i in range(nact):
            g = 0.0
            if is_open[i]:
                g = math.inf
                for k in range(4):
                    c = ac[i, k]
                    g = min(g, cap[c] / max(count[c], 1))
                g = min(g, lim[i] - rate[i])
                rate[i] += g
                if rate[i] >= lim[i] * (1 - 1e-9):
                    is_open[i] = False
            give[i] = g
        for i in range(nact):
            for k in range(4):
                cap[ac[i, k]] -= give[i]
        cap[none] = math.inf
        still = False
        for i in range(nact):
            if is_open[i]:
                for k in range(4):
                    c = ac[i, k]
                    if cap0[c] < math.inf and cap[c] <= 1e-9 * cap0[c]:  # saturated
                        is_open[i] = False
                still = still or is_open[i]
        if not still:
            break


@njit(cache=True)
def _sent_back(e: int, rev: np.ndarray, last_round: np.ndarray) -> float:
    """Bytes edge e's downloader sent its uploader in the last choker round."""
    return last_round[rev[e]] if rev[e] >= 0 else 0.0


@njit(cache=True)
def _step(now: float, dt: float, slots: np.ndarray, none: int, spread: bool, unchoke: float, reciprocate: bool,
          rev: np.ndarray, this_round: np.ndarray, last_round: np.ndarray, queue: np.ndarray,
          owner: np.ndarray, limit: np.ndarray, busy_rate: float, held: np.ndarray,
          slot_edge: np.ndarray, inflight: np.ndarray, sent: np.ndarray,
          share: np.ndarray, words: np.ndarray, lo: np.ndarray, hi: np.ndarray,
          counts: np.ndarray, holders: np.ndarray, got: np.ndarray, piece_bytes: np.ndarray, busy: np.ndarray,
          retry: np.ndarray, scanned: np.ndarray, src: np.ndarray, dst: np.ndarray, piece: np.ndarray,
          seen: np.ndarray, cons: np.ndarray, order: np.ndarray, start: np.ndarray, active: np.ndarray,
          moving: np.ndarray, rate: np.ndarray, cap0: np.ndarray, finished: np.ndarray,
          announce_at: np.ndarray, waiting: np.ndarray) -> tuple[float, float, float, int]:
    n = len(counts)
    nact = moving[0]
    piped = owner.shape[0] > 1
    unowned = np.full((1, 1), -1, dtype=np.int64)  # _pick's owner for a busy piece: any will do
    # Idle connections pick a piece. One found with nothing to move is looked at again only once
    # its uploader gains a piece (its downloader gaining one cannot give it any); only uploaders
    # with a free slot matter.
    for u in range(n):
        if unchoke > 0:  # peers holding a slot: the next piece, or the slot back at the round's end
            for s in range(slots[u]):
                e = slot_edge[u, s]
                if e < 0 or piece[e] >= 0:
                    continue
                mask = share[dst[e] if cons[e, 3] != none else n]
                if held[e] <= now or not _has_something(u, dst[e], words, lo, hi, mask):
                    slot_edge[u, s] = -1  # choked: the round is over, or it wants nothing of u
                    held[e] = 0.0
                    seen[e] = -1
                    busy[u] -= 1
                    retry[u] = True
                    if piped:
                        _drop_asked(e, dst[e], queue, owner)
                else:
                    _begin(e, u, dst[e], _next_asked(e, dst[e], queue, owner, words) if piped else -1, mask, piece,
                           inflight, limit, busy_rate, queue, owner, unowned, words, lo, hi, holders, got, n, spread)
                    active[nact] = e
                    nact += 1
        if busy[u] >= slots[u] or (counts[u] == scanned[u] and not retry[u]):
            continue
        scanned[u] = counts[u]
        retry[u] = False
        k = 0
        for j in range(start[u], start[u + 1]):
            e = order[j]
            if piece[e] >= 0 or seen[e] == counts[u] or held[e] > 0:
                continue
            seen[e] = counts[u]
            if _has_something(u, dst[e], words, lo, hi, share[dst[e] if cons[e, 3] != none else n]):
                waiting[k] = e
                k += 1
        # A freed slot goes to one of the waiting peers at random, as libtorrent's choker rotates
        # its unchokes (in connection order the first-connected peers always won and whole racks
        # starved behind them).
        free = slots[u] - busy[u]
        for i in range(k):
            r = i + np.random.randint(k - i)
            waiting[i], waiting[r] = waiting[r], waiting[i]
        if reciprocate:  # libtorrent's choker: who sent u the most in the last round first, ties shuffled
            for i in range(min(free, k)):
                best = i
                for j in range(i + 1, k):
                    if _sent_back(waiting[j], rev, last_round) > _sent_back(waiting[best], rev, last_round):
                        best = j
                waiting[i], waiting[best] = waiting[best], waiting[i]
        for i in range(k):
            e = waiting[i]
            if i < free:
                _begin(e, u, dst[e], -1, share[dst[e] if cons[e, 3] != none else n], piece, inflight, limit,
                       busy_rate, queue, owner, unowned, words, lo, hi, holders, got, n, spread)
                busy[u] += 1
                active[nact] = e
                nact += 1
                if unchoke > 0:
                    held[e] = now + unchoke
                    for s in range(slots[u]):
                        if slot_edge[u, s] < 0:
                            slot_edge[u, s] = e
                            break
            else:
                seen[e] = -1  # no slot: try again next step
                retry[u] = True
    _fair_rates(nact, active, cons, limit, cap0, none, rate)
    # Bytes move; blocks of one piece may come from several peers at once.
    cross = from_seedbox = total = 0.0
    for i in range(nact):
        e = active[i]
        moved = rate[i] * dt
        if reciprocate:
            this_round[e] += moved
        got[dst[e], piece[e]] += moved
        sent[src[e]] += moved
        total += rate[i]
        if cons[e, 3] != none:
            cross += moved
        if src[e] == 0:
            from_seedbox += moved
    transfers = nact
    i = 0
    while i < nact:
        e = active[i]
        d, q = dst[e], piece[e]
        if got[d, q] < piece_bytes[q]:
            i += 1
            continue
        if not words[d, q >> 6] & (ONE << np.uint64(q & 63)):
            _add_piece(d, q, True, words, lo, hi, counts, holders)
            if counts[d] == got.shape[1]:
                finished[d] = now + dt
                announce_at[d] = now + dt  # "completed": libtorrent announces at once
        inflight[q] -= 1
        if piped and owner[d, q] == e:
            owner[d, q] = -1
        limit[e] = math.inf
        piece[e] = -1
        seen[e] = -1
        if unchoke <= 0:
            busy[src[e]] -= 1
        retry[src[e]] = True
        nact -= 1
        active[i] = active[nact]
    moving[0] = nact
    return cross, from_seedbox, total, transfers
