"""A tiny authoritative DNS server on loopback UDP for tests: answers A queries for the names
it is given, NXDOMAIN for every other name, and an empty answer for other types; counts
the queries it gets per (name, type). Bounded: a daemon thread with a socket timeout."""
import socket
import struct
import threading


class DnsStub:
    def __init__(self, names):
        self.names = {n.lower().rstrip("."): ip for n, ip in names.items()}
        self.queries = {}
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def count(self, name, qtype=1):
        with self.lock:
            return self.queries.get((name.lower().rstrip("."), qtype), 0)

    def resolv_conf(self, path):
        with open(path, "w") as f:
            f.write("nameserver 127.0.0.1:%d\noptions timeout:2 attempts:1\n" % self.port)
        return path

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, data):
        if len(data) < 12:
            return None
        qid, flags, qd = struct.unpack("!HHH", data[:6])
        if qd != 1:
            return None
        pos, labels = 12, []
        while pos < len(data) and data[pos] != 0:
            n = data[pos]
            labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        question = data[12:pos + 5]
        qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
        name = ".".join(labels).lower()
        with self.lock:
            self.queries[(name, qtype)] = self.queries.get((name, qtype), 0) + 1
        ip = self.names.get(name)
        rcode = 0 if ip else 3
        answers = b""
        if ip and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 3600, 4) + socket.inet_aton(ip)
        head = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | rcode, 1,
                           1 if answers else 0, 0, 0)
        return head + question + answers
