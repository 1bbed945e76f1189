"""TCP options on client connections (tcp_keepalive, tcp_keepidle, ...): the pooler sets them on
its listening socket, from which Linux copies them to every accepted socket, so a login costs no
setsockopt; after a reload that changes them, each new connection gets the new values itself.

What is visible from outside the pooler is the keepalive timer of the accepted socket
(`ss -o` prints `timer:(keepalive,1min16sec,0)`): armed, and counting down from tcp_keepidle."""
import re
import shutil
import socket
import struct
import subprocess

import pytest

from util import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("ss"), reason="needs ss (iproute2)")


def keepalive_left(port, client_port):
    """Seconds left on the keepalive timer of the pooler's socket for this client, or None."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", "( sport = :%d and dport = :%d )" % (
        port, client_port)], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"timer:\(keepalive,(?:(\d+)min)?(?:(\d+(?:\.\d+)?)sec|(\d+)ms)?", out)
    if not m:
        return None
    return int(m.group(1) or 0) * 60 + float(m.group(2) or 0) + float(m.group(3) or 0) / 1000


def timer_of_new_connection(p):
    """The kernel completes the handshake before the pooler accepts, with the listener's options:
    an SSLRequest answered ('N', no TLS configured) shows the pooler has accepted and set up the
    socket, before its timer is read."""
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(struct.pack("!ii", 8, 80877103))
        assert s.recv(1) == b"N"
        return wait_for(lambda: keepalive_left(p.port, s.getsockname()[1]), 10, "the accepted socket")


def test_keepalive_settings_reach_accepted_sockets_and_follow_a_reload(make_pooler):
    p = make_pooler(settings={"tcp_keepalive": 1, "tcp_keepidle": 77, "tcp_keepintvl": 13})
    left = timer_of_new_connection(p)
    assert 60 <= left <= 77, "keepalive timer %.1fs, want tcp_keepidle=77 counting down" % left
    p.settings["tcp_keepidle"] = 33
    p.write_files()
    p.reload()
    left = timer_of_new_connection(p)
    assert 20 <= left <= 33, "after the reload: keepalive timer %.1fs, want tcp_keepidle=33" % left
