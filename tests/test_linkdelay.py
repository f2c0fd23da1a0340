"""The NFQUEUE messages of tools/lab/linkdelay.py, byte for byte (the listener itself runs in
tests/test_netns.py, where the packets it holds are timed)."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from tools.demo.procs import REPO
from tools.lab.linkdelay import PACKET, accept_up_to, packet_ids


def packet_message(packet_id: int, extra_first: bool = False) -> bytes:
    """A queued packet as the kernel sends it: nlmsghdr, nfgenmsg, attributes (the packet header,
    here optionally after another attribute)."""
    hdr = struct.pack("=HH", 4 + 7, 1) + struct.pack("!IHB", packet_id, 0x0800, 1) + b"\0"  # padded to 4
    mark = struct.pack("=HH", 8, 3) + struct.pack("!I", 42)
    body = struct.pack("!BBH", 2, 0, 0) + (mark + hdr if extra_first else hdr)
    return struct.pack("=IHHII", 16 + len(body), PACKET, 0, 0, 0) + body


@pytest.mark.parametrize("messages,ids", [
    ([], []),
    ([packet_message(7)], [7]),
    ([packet_message(1), packet_message(2), packet_message(0xFFFFFFFF)], [1, 2, 0xFFFFFFFF]),
    ([packet_message(5, extra_first=True)], [5]),
    # Another kind of message (an ack: NLMSG_ERROR) among them is skipped.
    ([packet_message(3), struct.pack("=IHHIIi", 20, 2, 0, 0, 0, 0), packet_message(4)], [3, 4]),
])
def test_packet_ids_come_out_of_one_read_in_order(messages: list[bytes], ids: list[int]) -> None:
    buf = bytearray(b"".join(messages) + b"\xff" * 64)  # a reused buffer: stale bytes after the read
    assert packet_ids(buf, sum(len(m) for m in messages)) == ids


def test_a_batch_verdict_accepts_every_packet_up_to_an_id() -> None:
    msg = accept_up_to(3, 1234)
    length, kind, flags = struct.unpack_from("=IHH", msg)
    assert length == len(msg) == 16 + 4 + 12
    assert kind == (3 << 8) | 3  # NFNL_SUBSYS_QUEUE, NFQNL_MSG_VERDICT_BATCH
    assert flags == 1  # NLM_F_REQUEST
    assert struct.unpack_from("!BBH", msg, 16) == (0, 0, 3)  # nfgenmsg: the queue in res_id
    assert struct.unpack_from("=HH", msg, 20) == (12, 2)  # NFQA_VERDICT_HDR
    assert struct.unpack_from("!II", msg, 24) == (1, 1234)  # NF_ACCEPT, the id


@pytest.mark.parametrize("argv,message", [
    (["tools.lab.linkdelay", "--delay-ms", "-1"], "--delay-ms must not be negative"),
    (["tools.lab", "up", "--latency", "-5"], "--latency must not be negative"),
    (["tools.lab", "up", "--loss", "100"], "--loss must be a percentage"),
    (["tools.bench.distribute", "--loss", "-1"], "--loss must be a percentage"),
])
def test_bad_impairments_are_refused_before_anything_is_built(argv: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
