"""A small raw PostgreSQL frontend (protocol 3.0) for tests that need to see or send exact bytes.

No external dependencies. Every socket operation has a timeout (RawConn(timeout=...)), so a
server that stops answering makes a test fail instead of hang.

    c = RawConn("127.0.0.1", port)
    c.login("alice", "app", password="pw")      # handles trust, cleartext, md5 and SCRAM-SHA-256
    r = c.query("select 1")                     # r.rows == [("1",)], r.tags == ["SELECT 1"]
    c.close()

PgError carries the ErrorResponse fields: e.fields["C"] (SQLSTATE), e.code, e.message, e.severity.
"""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import time

PROTO_3_0 = 3 << 16          # 196608
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102

AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class ConnectionClosed(Exception):
    """The peer closed the connection (EOF) while we expected data."""


class PgError(Exception):
    def __init__(self, fields):
        self.fields = fields
        super().__init__("%s %s: %s" % (fields.get("S", "?"), fields.get("C", "?"), fields.get("M", "")))

    @property
    def code(self):
        return self.fields.get("C")

    @property
    def message(self):
        return self.fields.get("M")

    @property
    def severity(self):
        return self.fields.get("V") or self.fields.get("S")


# ------------------------------------------------------------------ message builders
def _cstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s + b"\0"


def startup_packet(params, version=PROTO_3_0):
    """StartupMessage: int32 len, int32 version, (name\\0 value\\0)*, \\0."""
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += _cstr(k) + _cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request():
    return struct.pack("!II", 8, SSL_REQUEST_CODE)


def gssenc_request():
    return struct.pack("!II", 8, GSSENC_REQUEST_CODE)


def cancel_request(pid, key):
    return struct.pack("!IIII", 16, CANCEL_REQUEST_CODE, pid, key)


def message(mtype, payload=b""):
    """A regular (typed) frontend message."""
    if isinstance(mtype, str):
        mtype = mtype.encode()
    return mtype + struct.pack("!I", len(payload) + 4) + payload


def password_message(password):
    return message("p", _cstr(password))


def md5_response(user, password, salt):
    """The PasswordMessage payload string for AuthenticationMD5Password: md5(md5(pw+user)+salt)."""
    inner = hashlib.md5((password + user).encode()).hexdigest()
    return "md5" + hashlib.md5(inner.encode() + salt).hexdigest()


def query_message(sql):
    return message("Q", _cstr(sql))


def terminate_message():
    return message("X")


def parse_error_fields(payload):
    """ErrorResponse/NoticeResponse body -> {field-type-char: value}."""
    fields = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        t = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[t] = payload[i + 1:end].decode(errors="replace")
        i = end + 1
    return fields


# ------------------------------------------------------------------ SCRAM-SHA-256 (client side)
def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_secret(password, salt=None, iterations=4096):
    """A SCRAM secret in PostgreSQL's format: SCRAM-SHA-256$iter:salt$StoredKey:ServerKey."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = _hmac(salted, b"Server Key")
    b64 = lambda b: base64.b64encode(b).decode()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


def md5_secret(user, password):
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


class _ScramClient:
    def __init__(self, password):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = "n=,r=" + self.nonce
        self.server_signature = None

    def first(self):
        return ("n,," + self.client_first_bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ValueError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iters = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_msg = ",".join([self.client_first_bare, sf, without_proof]).encode()
        client_sig = _hmac(stored_key, auth_msg)
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = _hmac(salted, b"Server Key")
        self.server_signature = base64.b64encode(_hmac(server_key, auth_msg)).decode()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        sf = server_final.decode()
        if not sf.startswith("v=") or sf[2:] != self.server_signature:
            raise ValueError("bad SCRAM server signature: %r" % sf)


# ------------------------------------------------------------------ connection
class QueryResult:
    def __init__(self):
        self.columns = []
        self.rows = []
        self.tags = []
        self.notices = []
        self.notifications = []
        self.errors = []
        self.closed = False

    @property
    def error(self):
        return self.errors[0] if self.errors else None


class RawConn:
    def __init__(self, host, port, timeout=10.0, source_addr=None):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source_addr, 0) if source_addr else None)
        self.sock.settimeout(timeout)
        self.host = host
        self.buf = b""
        self.params = {}
        self.backend_pid = None
        self.backend_key = None
        self.auth_codes = []
        self.notices = []
        self.notifications = []
        self.negotiate = None
        self.tls = False

    # -- low level
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionClosed("connection closed by peer after %d of %d bytes" % (len(self.buf), n))
            self.buf += chunk

    def recv_exact(self, n):
        self._fill(n)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_byte(self):
        return self.recv_exact(1)

    def read_message(self):
        """-> (type as 1-char str, payload bytes)."""
        hdr = self.recv_exact(5)
        mtype = chr(hdr[0])
        (length,) = struct.unpack("!I", hdr[1:5])
        if length < 4 or length > (1 << 30):
            raise ValueError("bad message length %d for type %r" % (length, mtype))
        return mtype, self.recv_exact(length - 4)

    def read_message_within(self, timeout):
        """read_message with a different timeout; returns None on timeout."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.read_message()
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(old)

    def wait_closed(self, timeout):
        """Read until EOF. -> (bytes received, seconds waited). Raises AssertionError if the peer
        keeps the connection open for longer than timeout."""
        start = time.monotonic()
        received = self.buf
        self.buf = b""
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError("connection still open after %.1fs" % timeout)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return received, time.monotonic() - start
            received += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- negotiation
    def request_ssl(self):
        """Send SSLRequest; returns the one-byte answer ('S' or 'N')."""
        self.send(ssl_request())
        return self.read_byte().decode()

    def request_gssenc(self):
        self.send(gssenc_request())
        return self.read_byte().decode()

    def start_tls(self, cafile=None, server_hostname=None, certfile=None, keyfile=None):
        """Wrap the socket in TLS (after an 'S' answer). Without cafile nothing is verified."""
        if self.buf:
            raise AssertionError("server sent %r before the TLS handshake" % self.buf)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            ctx.load_verify_locations(cafile)
            ctx.check_hostname = server_hostname is not None
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if certfile:
            ctx.load_cert_chain(certfile, keyfile)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname or None)
        self.sock.settimeout(self.timeout)
        self.tls = True

    def ssl(self, **kw):
        """SSLRequest + handshake; AssertionError unless the server said 'S'."""
        answer = self.request_ssl()
        assert answer == "S", "server answered %r to SSLRequest" % answer
        self.start_tls(**kw)

    # -- startup and authentication
    def startup(self, user=None, database=None, version=PROTO_3_0, **extra):
        params = {}
        if user is not None:
            params["user"] = user
        if database is not None:
            params["database"] = database
        params.update(extra)
        self.send(startup_packet(params, version))
        self.user = user or ""

    def read_auth_request(self):
        """Next message must be an AuthenticationXXX ('R'); returns (code, rest). Skips
        NegotiateProtocolVersion (recorded in self.negotiate). Raises PgError on ErrorResponse."""
        while True:
            t, p = self.read_message()
            if t == "E":
                raise PgError(parse_error_fields(p))
            if t == "v":
                self.negotiate = parse_negotiate(p)
                continue
            if t == "N":
                self.notices.append(parse_error_fields(p))
                continue
            if t != "R":
                raise AssertionError("expected an authentication request, got %r %r" % (t, p[:80]))
            (code,) = struct.unpack("!I", p[:4])
            self.auth_codes.append(code)
            return code, p[4:]

    def authenticate(self, password=None):
        """Answer authentication requests until AuthenticationOk."""
        scram = None
        while True:
            code, rest = self.read_auth_request()
            if code == AUTH_OK:
                return
            if password is None:
                raise AssertionError("server asked for authentication %d and no password was given" % code)
            if code == AUTH_CLEARTEXT:
                self.send(password_message(password))
            elif code == AUTH_MD5:
                self.send(password_message(md5_response(self.user, password, rest[:4])))
            elif code == AUTH_SASL:
                mechs = [m.decode() for m in rest.split(b"\0") if m]
                if "SCRAM-SHA-256" not in mechs:
                    raise AssertionError("no SCRAM-SHA-256 in SASL mechanisms %r" % mechs)
                scram = _ScramClient(password)
                first = scram.first()
                self.send(message("p", _cstr("SCRAM-SHA-256") + struct.pack("!I", len(first)) + first))
            elif code == AUTH_SASL_CONTINUE:
                self.send(message("p", scram.final(rest)))
            elif code == AUTH_SASL_FINAL:
                scram.verify(rest)
            else:
                raise AssertionError("unsupported authentication request %d" % code)

    def read_until_ready(self):
        """After AuthenticationOk: ParameterStatus, BackendKeyData, notices ... ReadyForQuery."""
        while True:
            t, p = self.read_message()
            if t == "S":
                k, v = p.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "K":
                self.backend_pid, self.backend_key = struct.unpack("!II", p[:8])
            elif t == "N":
                self.notices.append(parse_error_fields(p))
            elif t == "E":
                raise PgError(parse_error_fields(p))
            elif t == "Z":
                return p.decode()
            else:
                raise AssertionError("unexpected message %r during startup" % t)

    def login(self, user, database, password=None, version=PROTO_3_0, **extra):
        self.startup(user, database, version, **extra)
        self.authenticate(password)
        return self.read_until_ready()

    # -- queries
    def query(self, sql):
        """Simple query; collects everything up to ReadyForQuery. Errors are returned in
        result.errors (the connection stays usable), not raised."""
        self.send(query_message(sql))
        r = QueryResult()
        while True:
            try:
                t, p = self.read_message()
            except ConnectionClosed:
                # a FATAL error is followed by the close, not by ReadyForQuery
                if r.errors and r.errors[-1].severity == "FATAL":
                    r.closed = True
                    return r
                raise
            if t == "T":
                (n,) = struct.unpack("!H", p[:2])
                cols, i = [], 2
                for _ in range(n):
                    end = p.index(b"\0", i)
                    cols.append(p[i:end].decode())
                    i = end + 1 + 18
                r.columns = cols
            elif t == "D":
                (n,) = struct.unpack("!H", p[:2])
                i, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", p[i:i + 4])
                    i += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(p[i:i + ln].decode())
                        i += ln
                r.rows.append(tuple(row))
            elif t == "C":
                r.tags.append(p.rstrip(b"\0").decode())
            elif t == "E":
                r.errors.append(PgError(parse_error_fields(p)))
            elif t == "N":
                r.notices.append(parse_error_fields(p))
            elif t == "A":
                r.notifications.append(parse_notification(p))
            elif t in ("I", "S"):
                pass
            elif t == "Z":
                return r
            else:
                raise AssertionError("unexpected message %r in query response" % t)

    def query_ok(self, sql):
        r = self.query(sql)
        if r.errors:
            raise r.errors[0]
        return r

    def read_notification(self, timeout):
        """Wait (without sending anything) for a NotificationResponse; None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            m = self.read_message_within(left)
            if m is None:
                return None
            t, p = m
            if t == "A":
                return parse_notification(p)
            if t == "N":
                self.notices.append(parse_error_fields(p))
            elif t == "E":
                raise PgError(parse_error_fields(p))

    def terminate(self):
        try:
            self.send(terminate_message())
        except OSError:
            pass
        self.close()


def parse_messages(data):
    """Split raw backend bytes into [(type, payload)]; a trailing partial message is returned
    as ('?', rest)."""
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 5:
            out.append(("?", data[i:]))
            break
        (ln,) = struct.unpack("!I", data[i + 1:i + 5])
        if ln < 4 or i + 1 + ln > len(data):
            out.append(("?", data[i:]))
            break
        out.append((chr(data[i]), data[i + 5:i + 1 + ln]))
        i += 1 + ln
    return out


def parse_notification(p):
    (pid,) = struct.unpack("!I", p[:4])
    parts = p[4:].split(b"\0")
    return {"pid": pid, "channel": parts[0].decode(), "payload": parts[1].decode()}


def parse_negotiate(p):
    """NegotiateProtocolVersion. PostgreSQL puts the whole version (196608 for 3.0) where the
    docs say "newest minor version"; both readings give minor 0 for 3.0."""
    version, n = struct.unpack("!II", p[:8])
    names = [x.decode() for x in p[8:].split(b"\0")[:n]]
    return {"minor": version & 0xFFFF, "raw": version, "unsupported": names}


def expect_error(conn, timeout=None):
    """Read messages until an ErrorResponse; return its fields. AssertionError if the connection
    closes first or something else arrives; skips notices and auth requests are reported."""
    if timeout is not None:
        conn.sock.settimeout(timeout)
    while True:
        try:
            t, p = conn.read_message()
        except ConnectionClosed:
            raise AssertionError("connection closed without an ErrorResponse")
        if t == "E":
            return parse_error_fields(p)
        if t in ("N", "v", "S"):
            continue
        raise AssertionError("expected ErrorResponse, got %r %r" % (t, p[:80]))


def try_login(host, port, user, database, password=None, timeout=10.0, tls=None, source_addr=None,
              **extra):
    """Connect and log in. Returns the RawConn (ready for queries); raises PgError with the
    server's ErrorResponse fields on refusal. tls: None (no SSLRequest) or a dict for start_tls."""
    c = RawConn(host, port, timeout=timeout, source_addr=source_addr)
    try:
        if tls is not None:
            c.ssl(**tls)
        c.login(user, database, password, **extra)
        return c
    except BaseException:
        c.close()
        raise
