"""Shared machinery for the cloud-endpoint stand-ins (the stand-ins).

Everything here is standard library only.

* Clock            injectable clock (offset or frozen instant), shareable between stand-ins (clock control in the stand-ins)
* HttpStandIn      threaded HTTP/1.1 server base class: start()/stop(), request recording, a
                   programmable fault queue, control endpoints (/__control, /__requests, /__state)
* Fault kinds      status, close, reset, malformed, oversized, empty, body, delay, hang
* run_main()       the common subprocess entry point (`--port N`, prints {"port": N}, SIGTERM stops)
* ControlClient    drive a stand-in running as a subprocess over its control endpoints
* spawn()          start a stand-in module as a subprocess and wait for its {"port": N} line
* JWT helpers      base64url, HS256 test signing/verification, decoding without verification
* token_counter()  the n of the `tok-<n>` marker inside a token string or a JWT payload
"""
import argparse
import base64
import calendar
import datetime as _dt
import hashlib
import hmac
import http.server
import json
import os
import re
import select
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"

# The test signing key shared by every token-issuing stand-in (entra, azure_imds, az) and the
# verifiers in pgfront. Tokens are JWS HS256 with this key unless a stand-in is given another one.
DEFAULT_SIGNING_KEY = b"tokenbouncer-standin-test-signing-key-v1"
DEFAULT_KID = "tb-standin-hs256"

# How big the "oversized" fault body is unless the fault says otherwise.
OVERSIZED_DEFAULT = 10 * 1024 * 1024
MAX_REQUEST_BODY = 16 * 1024 * 1024


# ----------------------------------------------------------------------------------------- clock
def parse_time(value):
    """Epoch seconds from an int/float, a digit string, or ISO-8601 UTC ('2015-08-30T12:36:00Z',
    '20150830T123600Z', fractional seconds allowed)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    s = str(value).strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        return float(s)
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", s)
    if m:
        return float(calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0)))
    s = s.replace(" ", "T")
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def iso_utc(epoch, frac=False):
    """'YYYY-MM-DDTHH:MM:SSZ' (AWS style); frac=True adds milliseconds ('.123Z', as STS may)."""
    d = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)
    if frac:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """now() = time.time() + offset, or a frozen instant. One Clock may be shared by several
    stand-ins and pgfront so a test moves all of them at once."""

    def __init__(self, offset=0.0, frozen=None):
        self._lock = threading.Lock()
        self.offset = float(offset or 0.0)
        self.frozen = parse_time(frozen)

    def now(self):
        with self._lock:
            if self.frozen is not None:
                return self.frozen
            return time.time() + self.offset

    def set(self, offset=None, frozen=None, unfreeze=False):
        with self._lock:
            if offset is not None:
                self.offset = float(offset)
            if frozen is not None:
                self.frozen = parse_time(frozen)
            if unfreeze:
                self.frozen = None

    def advance(self, seconds):
        with self._lock:
            if self.frozen is not None:
                self.frozen += seconds
            else:
                self.offset += seconds

    def state(self):
        return {"offset": self.offset, "frozen": self.frozen, "now": self.now()}


# ------------------------------------------------------------------------------------------- JWT
def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    if isinstance(s, bytes):
        s = s.decode("ascii")
    s = s.strip()
    if not re.fullmatch(r"[A-Za-z0-9_\-]*", s):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _json_compact(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def jwt_encode(payload, key=DEFAULT_SIGNING_KEY, header=None, alg="HS256"):
    """A compact JWS. alg 'HS256' signs with key (bytes); alg 'none' gives an empty signature."""
    h = {"typ": "JWT", "alg": alg}
    if alg == "HS256":
        h["kid"] = DEFAULT_KID
    if header:
        h.update(header)
    signing_input = b64url(_json_compact(h)) + "." + b64url(_json_compact(payload))
    if alg == "HS256":
        if isinstance(key, str):
            key = key.encode()
        sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64url(sig)
    if alg == "none":
        return signing_input + "."
    raise ValueError("jwt_encode: unsupported alg %r" % alg)


def jwt_decode(token):
    """(header, payload, signing_input, signature) without verifying anything. Raises ValueError."""
    if isinstance(token, bytes):
        token = token.decode("ascii")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS (%d parts)" % len(parts))
    try:
        header = json.loads(b64url_decode(parts[0]))
        payload = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError("bad JWT encoding: %s" % e)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("JWT header/payload is not a JSON object")
    return header, payload, (parts[0] + "." + parts[1]).encode(), sig


def jwt_verify_hs256(token, keys=(DEFAULT_SIGNING_KEY,)):
    """Return the payload if token is HS256-signed by one of keys; raise ValueError otherwise."""
    header, payload, signing_input, sig = jwt_decode(token)
    if header.get("alg") != "HS256":
        raise ValueError("JWT alg is %r, not HS256" % header.get("alg"))
    if isinstance(keys, (bytes, str)):
        keys = [keys]
    for k in keys:
        if isinstance(k, str):
            k = k.encode()
        if hmac.compare_digest(hmac.new(k, signing_input, hashlib.sha256).digest(), sig):
            return payload
    raise ValueError("JWT signature does not verify with the stand-in key")


_COUNTER_RE = re.compile(r"tok-(\d+)")


def token_counter(token):
    """The n of the first 'tok-<n>' marker in token; for a JWT the payload is searched too.
    Returns None when there is no marker."""
    if token is None:
        return None
    if isinstance(token, bytes):
        token = token.decode(errors="replace")
    m = _COUNTER_RE.search(token)
    if m:
        return int(m.group(1))
    try:
        _, payload, _, _ = jwt_decode(token)
    except ValueError:
        return None
    m = _COUNTER_RE.search(json.dumps(payload))
    return int(m.group(1)) if m else None


class Counter:
    """Thread-safe monotonically increasing counter (the n in tok-<n>), starting at 1."""

    def __init__(self, start=0):
        self._lock = threading.Lock()
        self.value = start

    def next(self):
        with self._lock:
            self.value += 1
            return self.value


# ------------------------------------------------------------------------------- HTTP plumbing
class Request(dict):
    """One recorded request. A dict (JSON-serialisable) with helpers."""

    def header(self, name, default=None):
        lname = name.lower()
        for k, v in self["headers"]:
            if k.lower() == lname:
                return v
        return default

    def header_all(self, name):
        lname = name.lower()
        return [v for k, v in self["headers"] if k.lower() == lname]

    @property
    def body_bytes(self):
        return base64.b64decode(self["body_b64"])

    @property
    def form(self):
        """The body parsed as application/x-www-form-urlencoded: {name: [values]}."""
        return urllib.parse.parse_qs(self.body_bytes.decode("utf-8", "replace"), keep_blank_values=True)

    def form1(self, name, default=None):
        v = self.form.get(name)
        return v[0] if v else default

    def q(self, name, default=None):
        v = self["query"].get(name)
        return v[0] if v else default

    def json(self):
        return json.loads(self.body_bytes)


class Response:
    def __init__(self, status=200, body=b"", content_type="application/json", headers=None):
        self.status = int(status)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.content_type = content_type
        self.headers = list((headers or {}).items()) if isinstance(headers, dict) else list(headers or [])


def json_response(obj, status=200, headers=None):
    return Response(status, json.dumps(obj).encode(), "application/json; charset=utf-8", headers)


def text_response(text, status=200, headers=None, content_type="text/plain"):
    return Response(status, text.encode() if isinstance(text, str) else text, content_type, headers)


FAULT_KINDS = ("status", "close", "reset", "malformed", "oversized", "empty", "body", "delay", "hang")


class Fault:
    """One programmed fault. Fields (all optional except kind):
      kind         one of FAULT_KINDS (default: 'status' when status is given, else 'delay')
      count        how many matching requests it applies to (default 1; None/0/-1 = until cleared)
      path         apply only to requests whose path starts with this prefix
      method       apply only to this HTTP method
      status       HTTP status for kind status/body (body defaults to the stand-in's error body)
      code/message stand-in specific error code and text for the error body (e.g. STS 'Throttling')
      delay        seconds to wait before acting (for kind 'delay': then answer normally)
      retry_after  value of a Retry-After header added to the response
      headers      extra response headers {name: value}
      body         explicit response body (str, or JSON-serialisable object) for kind status/body
      content_type content type for an explicit body
      size         body size for kind 'oversized' (default 10 MiB)
      chunked      kind 'oversized': send with Transfer-Encoding: chunked instead of Content-Length
    """

    def __init__(self, kind=None, count=1, path=None, method=None, status=None, code=None, message=None,
                 delay=0.0, retry_after=None, headers=None, body=None, content_type=None,
                 size=OVERSIZED_DEFAULT, chunked=False):
        if kind is None:
            kind = "status" if status is not None else "delay"
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (known: %s)" % (kind, ", ".join(FAULT_KINDS)))
        if kind == "status" and status is None:
            raise ValueError("fault kind 'status' needs status")
        self.kind = kind
        self.count = None if count in (None, 0, -1) else int(count)
        self.path = path
        self.method = method.upper() if method else None
        self.status = int(status) if status is not None else None
        self.code = code
        self.message = message
        self.delay = float(delay or 0.0)
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.body = body
        self.content_type = content_type
        self.size = int(size)
        self.chunked = bool(chunked)

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        if self.path and not path.startswith(self.path):
            return False
        return True

    def describe(self):
        d = {k: v for k, v in self.__dict__.items() if v not in (None, {}, False) or k == "count"}
        return d


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tb-standin/1"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.server.owner._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                out += self.rfile.read(size)
                self.rfile.readline(3)
                if len(out) > MAX_REQUEST_BODY:
                    raise ValueError("request body too large")
            return bytes(out)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n else b""

    def _dispatch(self):
        owner = self.server.owner
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        parsed = urllib.parse.urlsplit(self.path)
        req = Request(
            seq=0, time=time.time(), mono=time.monotonic(), clock=owner.clock.now(),
            method=self.command, target=self.path, path=parsed.path or "/", raw_query=parsed.query,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=[[k, v] for k, v in self.headers.items()],
            body=body.decode("utf-8", "replace"), body_b64=base64.b64encode(body).decode(),
            client="%s:%d" % self.client_address[:2], version=self.request_version,
            fault=None, status=None)
        if req["path"].startswith("/__"):
            self._send(owner._control(req))
            return
        owner._record(req)
        fault = owner._take_fault(req["method"], req["path"])
        if fault is not None:
            req["fault"] = fault.kind
            self._apply_fault(owner, fault, req)
            return
        try:
            resp = owner.handle(req)
        except Exception as e:  # a bug in a stand-in: report it loudly instead of hanging
            import traceback
            traceback.print_exc()
            resp = json_response({"error": "standin_bug", "error_description": repr(e)}, 500)
        if resp is None:
            resp = owner.not_found(req)
        req["status"] = resp.status
        self._send(resp)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def _send(self, resp, extra_headers=()):
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in list(resp.headers) + list(extra_headers):
                self.send_header(k, str(v))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _wait(self, seconds):
        """Sleep up to seconds; return early (False) when the server stops or the client hangs up."""
        deadline = time.monotonic() + seconds
        stop = self.server.owner._stopping
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if stop.is_set():
                return False
            try:
                r, _, _ = select.select([self.connection], [], [], min(left, 0.1))
                if r:
                    peek = self.connection.recv(1, socket.MSG_PEEK)
                    if not peek:
                        return False  # client closed
                    # pipelined data: keep waiting without consuming it
                    if stop.wait(min(left, 0.1)):
                        return False
            except (OSError, ValueError):
                return False

    def _apply_fault(self, owner, f, req):
        if f.delay and not self._wait(f.delay):
            self.close_connection = True
            return
        extra = list(f.headers.items())
        if f.retry_after is not None:
            extra.append(("Retry-After", str(f.retry_after)))
        if f.kind == "delay":
            resp = owner.handle(req) or owner.not_found(req)
            req["status"] = resp.status
            self._send(resp, extra)
        elif f.kind == "hang":
            self._wait(3600 * 24)
            self.close_connection = True
        elif f.kind in ("close", "reset"):
            self.close_connection = True
            try:
                if f.kind == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif f.kind == "status":
            if f.body is not None:
                resp = Response(f.status, f.body, f.content_type or "application/json")
            else:
                resp = owner.error_response(f.status, f.code, f.message, req)
            resp.status = f.status
            req["status"] = f.status
            self._send(resp, extra)
        elif f.kind == "body":
            body = f.body if f.body is not None else b""
            resp = Response(f.status or 200, body, f.content_type or owner.default_content_type)
            req["status"] = resp.status
            self._send(resp, extra)
        elif f.kind == "empty":
            req["status"] = f.status or 200
            self._send(Response(f.status or 200, b"", owner.default_content_type), extra)
        elif f.kind == "malformed":
            req["status"] = f.status or 200
            self._send(Response(f.status or 200, owner.malformed_body(req), owner.default_content_type), extra)
        elif f.kind == "oversized":
            req["status"] = f.status or 200
            self._send_oversized(owner, f, extra)

    def _send_oversized(self, owner, f, extra):
        head, fill, tail = owner.oversized_parts()
        n_fill = max(0, f.size - len(head) - len(tail))
        try:
            self.send_response(f.status or 200)
            self.send_header("Content-Type", owner.default_content_type)
            if f.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(head) + n_fill + len(tail)))
            for k, v in extra:
                self.send_header(k, str(v))
            self.end_headers()
            block = fill * (65536 // len(fill))

            def emit(data):
                if f.chunked:
                    self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
                else:
                    self.wfile.write(data)
            emit(head)
            left = n_fill
            while left > 0:
                chunk = block[:left]
                emit(chunk)
                left -= len(chunk)
            emit(tail)
            if f.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):   # client went away mid-request: not news
            return
        super().handle_error(request, client_address)


def refused_port():
    """A loopback port nothing listens on (bound, then closed): connecting gives ECONNREFUSED."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _check_loopback(host):
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("stand-ins listen on loopback only, not %r" % host)
    return "127.0.0.1"


class HttpStandIn:
    """Base class. Subclasses implement handle(req) -> Response (or None for 404) and may override
    error_response(), malformed_body(), oversized_parts(), configure(), state().

    In-process use:  s = Sub(port=0).start(); s.url; s.add_fault(kind='status', status=503, count=2)
                     s.requests(); s.clear_requests(); s.stop()   (also a context manager)
    Control over HTTP (subprocess form), not recorded and never faulted:
      POST /__control  JSON {"fault": {...}} | {"faults": [...]} | {"clear_faults": true}
                            | {"clear_requests": true} | {"clock_offset": s} | {"frozen_time": t}
                            | {"unfreeze": true} | {"advance": s} | {"config": {...}}  (combinable)
      GET  /__requests  recorded requests (JSON list)      GET /__state  stand-in state (JSON)
    """

    name = "standin"
    default_content_type = "application/json"

    def __init__(self, port=0, host="127.0.0.1", clock=None, clock_offset=0.0, frozen_time=None):
        self.host = _check_loopback(host)
        self.requested_port = int(port or 0)
        self.clock = clock if clock is not None else Clock(clock_offset, frozen_time)
        self.counter = Counter()
        self._lock = threading.RLock()
        self._faults = []
        self._requests = []
        self._seq = 0
        self._conns = set()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.port = None

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        self._stopping.clear()
        self._server = _Server((self.host, self.requested_port), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="%s-%d" % (self.name, self.port), daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *a):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def now(self):
        return self.clock.now()

    def _track(self, conn, add):
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # ------------------------------------------------------------------ faults
    def add_fault(self, kind=None, **kw):
        f = Fault(kind=kind, **kw)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def faults(self):
        with self._lock:
            return [f.describe() for f in self._faults]

    def _take_fault(self, method, path):
        with self._lock:
            for f in self._faults:
                if f.matches(method, path):
                    if f.count is not None:
                        f.count -= 1
                        if f.count <= 0:
                            self._faults.remove(f)
                    return f
        return None

    # ------------------------------------------------------------------ recording
    def _record(self, req):
        with self._lock:
            self._seq += 1
            req["seq"] = self._seq
            self._requests.append(req)

    def requests(self, path=None, method=None):
        with self._lock:
            return [r for r in self._requests
                    if (path is None or r["path"].startswith(path)) and (method is None or r["method"] == method)]

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    def wait_requests(self, n, timeout=5.0, path=None, method=None):
        """Poll until at least n matching requests were recorded; return them (TimeoutError else)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(path, method)
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError("%s: %d of %d requests after %.1fs" % (self.name, len(got), n, timeout))
            time.sleep(0.01)

    # ------------------------------------------------------------------ control
    def configure(self, **kw):
        """Change stand-in knobs at runtime (subclasses list theirs in CONFIG_KEYS)."""
        for k, v in kw.items():
            if k not in getattr(self, "CONFIG_KEYS", ()):
                raise ValueError("%s: unknown setting %r" % (self.name, k))
            setattr(self, k, v)

    def state(self):
        return {"name": self.name, "port": self.port, "counter": self.counter.value,
                "clock": self.clock.state(), "faults": self.faults(),
                "config": {k: _jsonable(getattr(self, k, None)) for k in getattr(self, "CONFIG_KEYS", ())}}

    def apply_control(self, ctl):
        if ctl.get("clear_faults"):
            self.clear_faults()
        if ctl.get("clear_requests"):
            self.clear_requests()
        for f in ([ctl["fault"]] if "fault" in ctl else []) + list(ctl.get("faults", [])):
            self.add_fault(**f)
        if ctl.get("unfreeze"):
            self.clock.set(unfreeze=True)
        if "clock_offset" in ctl or "frozen_time" in ctl:
            self.clock.set(offset=ctl.get("clock_offset"), frozen=ctl.get("frozen_time"))
        if "advance" in ctl:
            self.clock.advance(float(ctl["advance"]))
        if ctl.get("config"):
            self.configure(**ctl["config"])

    def _control(self, req):
        p = req["path"]
        try:
            if p == "/__control" and req["method"] == "POST":
                body = req.body_bytes
                self.apply_control(json.loads(body) if body.strip() else {})
                return json_response({"ok": True, "state": self.state()})
            if p == "/__requests" and req["method"] == "GET":
                return json_response(self.requests(req.q("path"), req.q("method")))
            if p == "/__state" and req["method"] == "GET":
                return json_response(self.state())
        except (ValueError, TypeError, KeyError) as e:
            return json_response({"ok": False, "error": str(e)}, 400)
        return json_response({"ok": False, "error": "unknown control path"}, 404)

    # ------------------------------------------------------------------ per-stand-in overridables
    def handle(self, req):
        return None

    def not_found(self, req):
        return json_response({"error": "not_found", "error_description": "no route for %s %s" % (
            req["method"], req["path"])}, 404)

    def error_response(self, status, code=None, message=None, req=None):
        return json_response({"error": code or "fault", "error_description": message or "injected fault"}, status)

    def malformed_body(self, req):
        return b'{"access_token": "tok-broken", "expires_in": '

    def oversized_parts(self):
        return b'{"padding":"', b"x", b'","access_token":"tok-oversized"}'


def _jsonable(v):
    try:
        json.dumps(v)
        return v
    except (TypeError, ValueError):
        return repr(v)


# -------------------------------------------------------------------------- subprocess support
def base_arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="listen port (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="must be 127.0.0.1")
    p.add_argument("--clock-offset", type=float, default=0.0, help="seconds added to the real clock")
    p.add_argument("--frozen-time", default=None, help="freeze the clock (epoch or ISO-8601)")
    p.add_argument("--config", default=None, help="JSON file with constructor keyword arguments")
    p.add_argument("--fault", action="append", default=[], metavar="JSON", help="initial fault (repeatable)")
    return p


def run_main(make_server, parser, argv=None):
    """Parse args, build with make_server(args, config_dict), start, print {"port": N} (plus
    server.announce()), serve until SIGTERM/SIGINT, stop, exit 0."""
    args = parser.parse_args(argv)
    _check_loopback(args.host)
    cfg = {}
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
    srv = make_server(args, cfg)
    for fj in args.fault:
        srv.add_fault(**json.loads(fj))
    stop = threading.Event()

    def on_signal(signo, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    srv.start()
    info = {"port": srv.port}
    if hasattr(srv, "announce"):
        info.update(srv.announce())
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    srv.stop()
    return 0


class ControlClient:
    """Talk to a stand-in's control endpoints (works for in-process ones too)."""

    def __init__(self, base_url, timeout=10.0):
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read())

    def control(self, **ctl):
        return self._call("POST", "/__control", ctl)

    def fault(self, **spec):
        return self.control(fault=spec)

    def clear_faults(self):
        return self.control(clear_faults=True)

    def configure(self, **cfg):
        return self.control(config=cfg)

    def set_clock(self, offset=None, frozen=None):
        ctl = {}
        if offset is not None:
            ctl["clock_offset"] = offset
        if frozen is not None:
            ctl["frozen_time"] = frozen
        return self.control(**ctl)

    def requests(self, path=None):
        q = "?" + urllib.parse.urlencode({"path": path}) if path else ""
        return [Request(r) for r in self._call("GET", "/__requests" + q)]

    def clear_requests(self):
        return self.control(clear_requests=True)

    def state(self):
        return self._call("GET", "/__state")


class Spawned:
    """A stand-in running as a subprocess. .info is its JSON start line, .port its port."""

    def __init__(self, proc, info):
        self.proc = proc
        self.info = info
        self.port = info["port"]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def control(self):
        return ControlClient(self.url)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit code (kills it after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        return self.proc.returncode


def spawn(script, *args, timeout=15.0, env=None):
    """Start test/standins/<script> (e.g. 'entra.py') with PYTHON and wait for its JSON line."""
    path = script if os.path.isabs(script) else os.path.join(HERE, script)
    proc = subprocess.Popen([PYTHON, path] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            err = b""
            if proc.poll() is None:
                proc.kill()
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            raise RuntimeError("%s did not announce its port: rc=%s stderr=%s" % (
                script, proc.returncode, err.decode(errors="replace")[-2000:]))
        r, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
    return Spawned(proc, json.loads(buf.split(b"\n", 1)[0]))


def new_guid():
    return str(uuid.uuid4())
