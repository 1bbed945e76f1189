#!/usr/bin/python3
"""Cloud database fronts (how a token is sent as the password, the RDS login front, the Azure PostgreSQL login front): a TLS-terminating PostgreSQL wire-protocol server
that logs clients in like Azure Database for PostgreSQL (Entra token), RDS/Aurora (SigV4 IAM token)
or Aurora DSQL would, then relays the session to a real PostgreSQL.

Login, per client connection:
  1. SSLRequest -> 'S' + TLS (cert/key given by the caller); GSSENCRequest -> 'N'; CancelRequest ->
     forwarded to the real server (the client holds the real BackendKeyData); a plaintext
     StartupMessage -> FATAL 28000 (no pg_hba.conf entry ... no encryption).
  2. StartupMessage(user=U, database=D) -> AuthenticationCleartextPassword (NegotiateProtocolVersion
     first when the client asks for a minor version > 0 or sends _pq_ options).
  3. PasswordMessage verified by the mode's verifier:
       azure  HS256 signature with the stand-in key (or an is_issued() record check), aud in the
              accepted audiences (default https://ossrdbms-aad.database.windows.net), exp > now,
              nbf <= now + 300, and U == the role mapped to the token's principal
       rds    verify_presigned(flavor="rds") against endpoint host:port, region, DBUser == U, keys
       dsql   verify_presigned(flavor="dsql"): host without port, DbConnectAdmin iff U == admin
     failure -> FATAL 28P01 'password authentication failed for user "U"' (azure) /
                'PAM authentication failed for user "U"' (rds, dsql)
  4. success -> the front logs in to the real PostgreSQL as the fixed relay role (cleartext, md5 or
     SCRAM-SHA-256, whatever the server asks), sends the client AuthenticationOk and then relays
     both directions verbatim (ParameterStatus/BackendKeyData/ReadyForQuery come from the server).
  5. max_age: a relayed connection older than max_age seconds is ended at the next message
     boundary from the server with ErrorResponse FATAL 57P01 (as DSQL ends connections at 60 min).
Counters: stats() in-process, or GET /stats on the control port. Runtime changes: POST /__control
{"config": {"max_age": s, "audiences": [...], "roles": {...}}, "clock_offset": s, ...}.
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import (DEFAULT_SIGNING_KEY, Clock, HttpStandIn, json_response,  # noqa: E402
                          jwt_verify_hs256)
from sigv4_verify import DEFAULT_AWS_MASTER, KeyStore, SigV4Error, verify_presigned  # noqa: E402

AZURE_AUDIENCE = "https://ossrdbms-aad.database.windows.net"
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTO_3 = 3
RELAY_CHUNK = 256 * 1024
STREAM_LIMIT = 1024 * 1024
MAX_PASSWORD_PACKET = 65536


class AuthFailure(Exception):
    """A verifier rejected the password; str() is the reason (kept in front.rejections)."""


# ------------------------------------------------------------------------------------ verifiers
class AzureVerifier:
    """the Azure PostgreSQL login front. roles: {principal identifier (oid, upn, preferred_username, unique_name, appid,
    xms_mirid or its last segment, group oid): role}. roles=None: the role is derived like
    azure-postgresql-auth (the database user taken from an Entra token): user-assigned identity name from xms_mirid, upn,
    preferred_username, unique_name, app_displayname, or the resource name of a system identity."""

    failure_message = 'password authentication failed for user "%s"'

    def __init__(self, audiences=(AZURE_AUDIENCE,), keys=(DEFAULT_SIGNING_KEY,), roles=None, issued_check=None,
                 verify_signature=True):
        self.audiences = list(audiences)
        self.keys = list(keys)
        self.roles = roles
        self.issued_check = issued_check
        self.verify_signature = verify_signature

    def principal_roles(self, claims):
        ids = [claims.get(k) for k in ("oid", "upn", "preferred_username", "unique_name", "appid", "xms_mirid")]
        mirid = claims.get("xms_mirid") or ""
        if mirid:
            ids.append(mirid.rstrip("/").split("/")[-1])
        ids += list(claims.get("groups") or [])
        ids = [i for i in ids if i]
        if self.roles is not None:
            return {self.roles[i] for i in ids if i in self.roles}
        out = set()
        low = mirid.lower()
        if "/providers/microsoft.managedidentity/userassignedidentities/" in low:
            out.add(mirid.rstrip("/").split("/")[-1])
        for k in ("upn", "preferred_username", "unique_name", "app_displayname"):
            if claims.get(k):
                out.add(claims[k])
        if mirid and not out:
            out.add(mirid.rstrip("/").split("/")[-1])
        return out

    def verify(self, user, database, password, now):
        try:
            if self.verify_signature:
                claims = jwt_verify_hs256(password, self.keys)
            else:
                from standin_base import jwt_decode
                claims = jwt_decode(password)[1]
        except ValueError as e:
            if self.issued_check is None or not self.issued_check(password):
                raise AuthFailure("token rejected: %s" % e)
            from standin_base import jwt_decode
            claims = jwt_decode(password)[1]
        if self.issued_check is not None and not self.issued_check(password):
            raise AuthFailure("token was not issued by the stand-in")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if not any(a in self.audiences for a in auds):
            raise AuthFailure("aud %r is not one of %s" % (aud, self.audiences))
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            raise AuthFailure("token expired (exp=%r now=%d)" % (exp, now))
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + 300:
            raise AuthFailure("token not yet valid (nbf=%r now=%d)" % (nbf, now))
        roles = self.principal_roles(claims)
        if user not in roles:
            raise AuthFailure("user %r is not the role of this principal (roles %s)" % (user, sorted(roles)))
        return {"oid": claims.get("oid"), "roles": sorted(roles), "exp": exp}


class SigV4PgVerifier:
    """the RDS login front for flavor 'rds' (host must be 'name:port') or 'dsql' (host 'name')."""

    failure_message = 'PAM authentication failed for user "%s"'

    def __init__(self, flavor, host, region=None, keys=None, skew=300, max_expires=None):
        self.flavor = flavor
        self.host = host
        self.region = region
        self.keys = keys if isinstance(keys, KeyStore) else KeyStore(static=keys or {})
        self.skew = skew
        self.max_expires = max_expires

    def verify(self, user, database, password, now):
        try:
            return verify_presigned(password, self.host, self.keys, now, self.flavor, self.region, user,
                                    self.skew, self.max_expires)
        except SigV4Error as e:
            raise AuthFailure("%s: %s" % (e.code, e))


# ---------------------------------------------------------------------------------- wire helpers
def msg(t, payload=b""):
    return t + struct.pack("!I", len(payload) + 4) + payload


def error_response(code, message, severity="FATAL", detail=None):
    f = b"S" + severity.encode() + b"\0V" + severity.encode() + b"\0C" + code.encode() + b"\0M" + \
        message.encode() + b"\0"
    if detail:
        f += b"D" + detail.encode() + b"\0"
    return msg(b"E", f + b"\0")


def parse_error(payload):
    out = {}
    for part in payload.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


async def read_message(reader, limit=1 << 24):
    hdr = await reader.readexactly(5)
    n = struct.unpack("!I", hdr[1:5])[0]
    if n < 4 or n > limit:
        raise ValueError("invalid message length %d" % n)
    return hdr[:1], await reader.readexactly(n - 4)


_salted_cache = {}


def _salted(password, salt, iterations):
    k = (password, salt, iterations)
    v = _salted_cache.get(k)
    if v is None:
        v = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        _salted_cache[k] = v
    return v


class UpstreamError(Exception):
    def __init__(self, fields, raw=None):
        super().__init__(fields.get("M", "upstream error") if isinstance(fields, dict) else str(fields))
        self.fields = fields if isinstance(fields, dict) else {"M": str(fields)}
        self.raw = raw


async def upstream_login(host, port, user, password, database, params, timeout=15.0):
    """Log in to the real PostgreSQL. Returns (reader, writer) positioned right after AuthenticationOk."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=STREAM_LIMIT), timeout)
    try:
        body = struct.pack("!I", PROTO_3 << 16)
        p = dict(params)
        p["user"] = user
        p["database"] = database
        for k, v in p.items():
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        writer.write(struct.pack("!I", len(body) + 4) + body)
        scram = None
        while True:
            t, payload = await asyncio.wait_for(read_message(reader), timeout)
            if t == b"E":
                raise UpstreamError(parse_error(payload), msg(t, payload))
            if t in (b"N", b"v"):
                continue
            if t != b"R":
                raise UpstreamError({"C": "08P01", "M": "unexpected message %r during upstream login" % t})
            code = struct.unpack("!I", payload[:4])[0]
            if code == 0:
                return reader, writer
            if code == 3:
                writer.write(msg(b"p", password.encode() + b"\0"))
            elif code == 5:
                inner = hashlib.md5((password + user).encode()).hexdigest()
                writer.write(msg(b"p", b"md5" + hashlib.md5(inner.encode() + payload[4:8]).hexdigest().encode()
                                 + b"\0"))
            elif code == 10:
                mechs = [m for m in payload[4:].split(b"\0") if m]
                if b"SCRAM-SHA-256" not in mechs:
                    raise UpstreamError({"C": "28000", "M": "upstream offers no SCRAM-SHA-256: %r" % mechs})
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = "n=,r=" + nonce
                first = ("n,," + first_bare).encode()
                scram = {"nonce": nonce, "first_bare": first_bare}
                writer.write(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11:
                server_first = payload[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                if not attrs["r"].startswith(scram["nonce"]):
                    raise UpstreamError({"C": "28000", "M": "SCRAM nonce mismatch"})
                salted = _salted(password, base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
                stored = hashlib.sha256(client_key).digest()
                without_proof = "c=biws,r=" + attrs["r"]
                auth_msg = ",".join([scram["first_bare"], server_first, without_proof]).encode()
                sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
                scram["server_sig"] = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
                writer.write(msg(b"p", (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()))
            elif code == 12:
                final = payload[4:].decode()
                if final != "v=" + scram["server_sig"]:
                    raise UpstreamError({"C": "28000", "M": "upstream SCRAM server signature mismatch"})
            else:
                raise UpstreamError({"C": "28000", "M": "unsupported upstream authentication request %d" % code})
            await writer.drain()
    except BaseException:
        writer.close()
        raise


# ------------------------------------------------------------------------------------ the front
class _Relay:
    __slots__ = ("id", "user", "start", "expired", "at_boundary", "cwriter", "uwriter", "done", "tasks")

    def __init__(self, rid, user, start, cwriter, uwriter):
        self.id, self.user, self.start = rid, user, start
        self.expired = False
        self.at_boundary = True
        self.cwriter, self.uwriter = cwriter, uwriter
        self.done = False
        self.tasks = []


class PgFront:
    """Constructor:
      cert, key            PEM files for the TLS server side
      upstream_host/port   the real PostgreSQL; upstream_user/upstream_password the relay role;
      upstream_database    database to open upstream (None: the client's database)
      mode                 'azure' | 'rds' | 'dsql', or an object with verify(user, db, password, now)
                           and failure_message
      azure:  audiences, signing_keys, roles, issued_check (callable token -> bool, e.g.
              entra.is_issued), verify_signature
      rds/dsql: endpoint_host (default 127.0.0.1), endpoint_port (rds; default the front's port),
              region (None = any), aws_keys (KeyStore or {akid: secret | (secret, token)}; minted
              stand-in credentials are always recognised via aws_master), max_expires
      max_age              seconds; relayed connections older than this are closed (None = never)
      max_age_code/max_age_message  the error sent when doing so
      control_port         None: no HTTP control; 0: any free port (.control_port)
      clock / clock_offset / frozen_time   the verifiers' clock (standin_base.Clock)
      authentication_timeout  seconds for the whole login phase (default 30)
      direct_tls           an ssl.SSLContext: TLS from the first byte, no SSLRequest (Cloud SQL's port
                           3307, AlloyDB's 5433); the verifier may then define auto_login(user, database,
                           peer_cert_der, now) -> True (log in without a password; raise AuthFailure to
                           refuse with FATAL 28000) or False (ask for the password as usual)
                           and pre_startup(reader, writer, peer_cert_der) -> bool, a coroutine run before
                           the StartupMessage is read (AlloyDB's metadata exchange); False hangs up
      hosts                the addresses to listen on (default 127.0.0.1 only; loopback only)
    """

    def __init__(self, cert, key, upstream_port, upstream_user, upstream_password, upstream_host="127.0.0.1",
                 upstream_database=None, mode="azure", port=0, audiences=(AZURE_AUDIENCE,),
                 signing_keys=(DEFAULT_SIGNING_KEY,), roles=None, issued_check=None, verify_signature=True,
                 endpoint_host="127.0.0.1", endpoint_port=None, region=None, aws_keys=None,
                 aws_master=DEFAULT_AWS_MASTER, max_expires=None, max_age=None, max_age_code="57P01",
                 max_age_message=None, control_port=None, clock=None, clock_offset=0.0, frozen_time=None,
                 authentication_timeout=30.0, require_ssl=True, direct_tls=None, hosts=("127.0.0.1",)):
        self.cert, self.key = cert, key
        self.upstream = dict(host=upstream_host, port=int(upstream_port), user=upstream_user,
                             password=upstream_password, database=upstream_database)
        self.requested_port = port
        self.port = None
        self.clock = clock if clock is not None else Clock(clock_offset, frozen_time)
        self.mode = mode if isinstance(mode, str) else "custom"
        self.endpoint_host, self.endpoint_port, self.region = endpoint_host, endpoint_port, region
        if isinstance(aws_keys, KeyStore):
            self.aws_keys = aws_keys
        else:
            self.aws_keys = KeyStore(static=aws_keys or {}, master=aws_master)
        self.max_expires = max_expires
        if mode == "azure":
            self.verifier = AzureVerifier(audiences, signing_keys, roles, issued_check, verify_signature)
        elif mode in ("rds", "dsql"):
            self.verifier = None  # built at start(), when the port is known
        else:
            self.verifier = mode
        self.max_age = max_age
        self.max_age_code = max_age_code
        self.max_age_message = max_age_message
        self.control_port_requested = control_port
        self.control_port = None
        self.authentication_timeout = authentication_timeout
        self.require_ssl = require_ssl
        self.direct_tls = direct_tls
        self.hosts = [h for h in hosts if h.startswith("127.")]
        self.rejections = []
        self._lock = threading.Lock()
        self._relays = {}
        self._conn_writers = set()
        self._tasks = set()
        self._lingering = set()
        self._next_id = 0
        self._loop = None
        self._thread = None
        self._server = None
        self._control = None
        self.reset_stats()

    # ------------------------------------------------------------------ stats
    def reset_stats(self):
        with getattr(self, "_lock", threading.Lock()):
            self.counters = dict(total_connections=0, accepted_logins=0, rejected_logins=0, plaintext_rejected=0,
                                 upstream_failures=0, cancel_requests=0, closed_by_max_age=0, max_age_observed=0.0,
                                 bytes_to_server=0, bytes_to_client=0, open_connections=0)
            self.rejections = []

    def stats(self):
        """Counters plus open_relays (relayed connections now) and max_age_observed (seconds, the
        oldest relayed connection seen, open or closed)."""
        now = time.monotonic()
        with self._lock:
            s = dict(self.counters)
            s["open_relays"] = len(self._relays)
            ages = [now - r.start for r in self._relays.values()]
        s["max_age_observed"] = round(max([s["max_age_observed"]] + ages), 3)
        s["mode"] = self.mode
        return s

    def _bump(self, name, n=1):
        with self._lock:
            self.counters[name] += n

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout=10.0):
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ssl.load_cert_chain(self.cert, self.key)
        started = threading.Event()
        err = []

        def run():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._client, self.hosts if len(self.hosts) > 1 else self.hosts[0], self.requested_port,
                    limit=STREAM_LIMIT, backlog=512, ssl=self.direct_tls))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:  # noqa: B902
                err.append(e)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.close()
        self._thread = threading.Thread(target=run, name="pgfront", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise RuntimeError("pgfront did not start")
        if err:
            raise err[0]
        if self.mode == "rds":
            self.verifier = SigV4PgVerifier("rds", "%s:%d" % (self.endpoint_host, self.endpoint_port or self.port),
                                            self.region, self.aws_keys, max_expires=self.max_expires)
        elif self.mode == "dsql":
            self.verifier = SigV4PgVerifier("dsql", self.endpoint_host, self.region, self.aws_keys,
                                            max_expires=self.max_expires)
        if self.control_port_requested is not None:
            self._control = _FrontControl(self, port=self.control_port_requested, clock=self.clock).start()
            self.control_port = self._control.port
        return self

    def stop(self, timeout=10.0):
        if self._loop is None:
            return
        if self._control is not None:
            self._control.stop()
            self._control = None
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop = None

    async def _shutdown(self):
        self._server.close()
        for w in list(self._conn_writers):
            w.close()
        with self._lock:
            relays = list(self._relays.values())
        for r in relays:
            for t in r.tasks:
                t.cancel()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for tr in list(self._lingering):
            self._reap(tr)
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._server.wait_closed(), 5)
        except asyncio.TimeoutError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def configure(self, **kw):
        """Runtime knobs: max_age, max_age_code, max_age_message, audiences, roles, region."""
        for k, v in kw.items():
            if k in ("max_age", "max_age_code", "max_age_message"):
                setattr(self, k, v)
            elif k in ("audiences", "roles") and isinstance(self.verifier, AzureVerifier):
                setattr(self.verifier, k, v)
            elif k == "region" and isinstance(self.verifier, SigV4PgVerifier):
                self.verifier.region = v
            else:
                raise ValueError("pgfront: unknown or inapplicable setting %r" % k)

    # ------------------------------------------------------------------ per connection
    async def _client(self, reader, writer):
        self._bump("total_connections")
        self._bump("open_connections")
        self._conn_writers.add(writer)
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            login = await asyncio.wait_for(self._login(reader, writer), self.authentication_timeout)
            if login is not None:
                await self._relay(reader, writer, *login)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._bump("open_connections", -1)
            self._conn_writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            # a TLS close waits for the peer's close_notify; do not let it linger for ever
            tr = writer.transport
            self._lingering.add(tr)
            self._loop.call_later(5.0, self._reap, tr)

    def _reap(self, tr):
        self._lingering.discard(tr)
        if getattr(tr, "_ssl_protocol", "plain") is None:
            return                     # TLS transport already closed completely
        try:
            tr.abort()
        except (AttributeError, RuntimeError):
            pass

    def _fatal(self, writer, code, message):
        try:
            writer.write(error_response(code, message))
        except (OSError, RuntimeError):
            pass

    async def _login(self, reader, writer):
        tls = self.direct_tls is not None
        pre = getattr(self.verifier, "pre_startup", None) if tls else None
        if pre is not None:
            sslobj = writer.get_extra_info("ssl_object")
            if not await pre(reader, writer, sslobj.getpeercert(binary_form=True) if sslobj else None):
                return None
        while True:
            n = struct.unpack("!I", await reader.readexactly(4))[0]
            if n < 8 or n > 10000:
                self._fatal(writer, "08P01", "invalid length of startup packet")
                return None
            body = await reader.readexactly(n - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code == SSL_REQUEST:
                if tls:
                    self._fatal(writer, "08P01", "SSLRequest received on an encrypted connection")
                    return None
                buffered = getattr(reader, "_buffer", b"")
                if buffered:
                    self._fatal(writer, "08P01", "received unencrypted data after SSL request")
                    return None
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._ssl)
                tls = True
                continue
            if code == GSSENC_REQUEST:
                writer.write(b"N")
                await writer.drain()
                continue
            if code == CANCEL_REQUEST:
                self._bump("cancel_requests")
                await self._forward_cancel(body)
                return None
            if code >> 16 != PROTO_3:
                self._fatal(writer, "0A000", "unsupported frontend protocol %d.%d: server supports 3.0 to 3.0"
                            % (code >> 16, code & 0xFFFF))
                return None
            break
        items = body[4:].split(b"\0")
        params = {}
        for i in range(0, len(items) - 1, 2):
            if not items[i]:
                break
            params[items[i].decode(errors="replace")] = items[i + 1].decode(errors="replace")
        user = params.pop("user", None)
        database = params.pop("database", None) or user
        if not user:
            self._fatal(writer, "28000", "no PostgreSQL user name specified in startup packet")
            return None
        peer = writer.get_extra_info("peername") or ("?", 0)
        if not tls and self.require_ssl:
            self._bump("plaintext_rejected")
            self._fatal(writer, "28000", 'no pg_hba.conf entry for host "%s", user "%s", database "%s", no '
                        "encryption" % (peer[0], user, database))
            return None
        pq = [k for k in params if k.startswith("_pq_.")]
        for k in pq:
            params.pop(k)
        if (code & 0xFFFF) > 0 or pq:
            payload = struct.pack("!II", 0, len(pq)) + b"".join(k.encode() + b"\0" for k in pq)
            writer.write(msg(b"v", payload))
        auto = getattr(self.verifier, "auto_login", None) if self.direct_tls is not None else None
        if auto is not None:
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            try:
                if auto(user, database, der, self.clock.now()):
                    return await self._upstream(writer, user, database, params)
            except AuthFailure as e:
                self._reject(user, database, e)
                self._fatal(writer, "28000", getattr(self.verifier, "auto_failure_message", "%s") % user)
                await writer.drain()
                return None
        writer.write(msg(b"R", struct.pack("!I", 3)))
        await writer.drain()
        try:
            t, payload = await read_message(reader, MAX_PASSWORD_PACKET)
        except ValueError:
            self._fatal(writer, "08P01", "invalid password packet size")
            return None
        if t != b"p":
            self._fatal(writer, "08P01", "expected password response, got message type %r" % t)
            return None
        if not payload.endswith(b"\0"):
            self._fatal(writer, "08P01", "invalid password packet")
            return None
        password = payload[:-1].split(b"\0", 1)[0].decode("utf-8", "replace")
        fail = getattr(self.verifier, "failure_message", 'password authentication failed for user "%s"')
        try:
            self.verifier.verify(user, database, password, self.clock.now())
        except AuthFailure as e:
            self._reject(user, database, e)
            self._fatal(writer, "28P01", fail % user)
            await writer.drain()
            return None
        return await self._upstream(writer, user, database, params)

    def _reject(self, user, database, e):
        self._bump("rejected_logins")
        with self._lock:
            self.rejections.append({"user": user, "database": database, "reason": str(e), "time": time.time()})
            del self.rejections[:-1000]

    async def _upstream(self, writer, user, database, params):
        up = self.upstream
        try:
            ureader, uwriter = await upstream_login(up["host"], up["port"], up["user"], up["password"],
                                                    up["database"] or database, params)
        except UpstreamError as e:
            self._bump("upstream_failures")
            if e.raw:
                writer.write(e.raw)
            else:
                self._fatal(writer, e.fields.get("C", "08006"), "upstream login failed: %s" % e.fields.get("M"))
            await writer.drain()
            return None
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
            self._bump("upstream_failures")
            self._fatal(writer, "08006", "could not connect to the upstream server: %s" % e)
            await writer.drain()
            return None
        self._bump("accepted_logins")
        writer.write(msg(b"R", struct.pack("!I", 0)))
        return user, ureader, uwriter

    async def _forward_cancel(self, body):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(self.upstream["host"], self.upstream["port"]), 5)
            w.write(struct.pack("!I", 16) + body[:12])
            await w.drain()
            w.close()
        except (OSError, asyncio.TimeoutError):
            pass

    async def _relay(self, creader, cwriter, user, ureader, uwriter):
        with self._lock:
            self._next_id += 1
            r = _Relay(self._next_id, user, time.monotonic(), cwriter, uwriter)
            self._relays[r.id] = r
        timer = None
        if self.max_age:
            timer = self._loop.call_later(float(self.max_age), self._expire, r)
        up = asyncio.ensure_future(self._pump_up(creader, uwriter, r))
        down = asyncio.ensure_future(self._pump_down(ureader, cwriter, r))
        r.tasks = [up, down]
        try:
            await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (up, down):
                t.cancel()
            if timer is not None:
                timer.cancel()
            uwriter.close()
            age = time.monotonic() - r.start
            with self._lock:
                self._relays.pop(r.id, None)
                self.counters["max_age_observed"] = max(self.counters["max_age_observed"], age)

    async def _pump_up(self, creader, uwriter, r):
        try:
            while True:
                data = await creader.read(RELAY_CHUNK)
                if not data or r.done:
                    return
                uwriter.write(data)
                self.counters["bytes_to_server"] += len(data)
                await uwriter.drain()
        except (ConnectionError, OSError, ssl.SSLError):
            return

    async def _pump_down(self, ureader, cwriter, r):
        hdr = b""
        remaining = 0
        try:
            while True:
                r.at_boundary = remaining == 0 and not hdr
                if r.expired and r.at_boundary:
                    self._end_expired(r)
                    return
                data = await ureader.read(RELAY_CHUNK)
                if not data or r.done:
                    return
                i, n = 0, len(data)
                cut = None
                while i < n:
                    if remaining:
                        take = min(remaining, n - i)
                        i += take
                        remaining -= take
                    else:
                        need = 5 - len(hdr)
                        piece = data[i:i + need]
                        hdr += piece
                        i += len(piece)
                        if len(hdr) == 5:
                            remaining = struct.unpack("!I", hdr[1:5])[0] - 4
                            hdr = b""
                    if r.expired and remaining == 0 and not hdr:
                        cut = i
                        break
                if cut is not None:
                    data = data[:cut]
                # state after this chunk, before it is queued: _expire() may run during drain()
                r.at_boundary = remaining == 0 and not hdr
                cwriter.write(data)
                self.counters["bytes_to_client"] += len(data)
                await cwriter.drain()
                if cut is not None:
                    self._end_expired(r)
                    return
        except (ConnectionError, OSError, ssl.SSLError):
            return

    def _expire(self, r):
        r.expired = True
        if r.at_boundary and not r.done:
            self._end_expired(r)
        else:
            self._loop.call_later(5.0, self._force_close, r)

    def _force_close(self, r):
        if not r.done:
            self._end_expired(r)

    def _end_expired(self, r):
        if r.done:
            return
        r.done = True
        self._bump("closed_by_max_age")
        text = self.max_age_message or ("terminating connection because it exceeded the maximum connection "
                                        "lifetime of %s seconds" % self.max_age)
        try:
            r.cwriter.write(error_response(self.max_age_code, text))
        except (OSError, RuntimeError):
            pass
        r.cwriter.close()
        r.uwriter.close()
        for t in r.tasks:
            if t is not asyncio.current_task():
                t.cancel()


class _FrontControl(HttpStandIn):
    """HTTP control port of a PgFront: GET /stats, GET /rejections, POST /__control."""

    name = "pgfront-control"

    def __init__(self, front, **kw):
        super().__init__(**kw)
        self.front = front

    def handle(self, req):
        if req["path"] == "/stats":
            return json_response(self.front.stats())
        if req["path"] == "/rejections":
            return json_response(self.front.rejections)
        return None

    def configure(self, **kw):
        self.front.configure(**kw)

    def apply_control(self, ctl):
        if ctl.get("reset_stats"):
            self.front.reset_stats()
        super().apply_control(ctl)

    def state(self):
        s = super().state()
        s["stats"] = self.front.stats()
        return s


def main(argv=None):
    p = argparse.ArgumentParser(description="TLS PostgreSQL front emulating Azure/RDS/DSQL login (the RDS login front, the Azure PostgreSQL login front)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0, help="HTTP control port (0 = any, -1 = none)")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--mode", choices=("azure", "rds", "dsql"), default="azure")
    p.add_argument("--upstream-host", default="127.0.0.1")
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--upstream-user", required=True)
    p.add_argument("--upstream-password", required=True)
    p.add_argument("--upstream-database", default=None)
    p.add_argument("--max-age", type=float, default=None)
    p.add_argument("--audience", action="append", default=None)
    p.add_argument("--signing-key", default=None)
    p.add_argument("--role-map", action="append", default=None, metavar="PRINCIPAL=ROLE")
    p.add_argument("--endpoint-host", default="127.0.0.1")
    p.add_argument("--endpoint-port", type=int, default=None)
    p.add_argument("--region", default=None)
    p.add_argument("--aws-key", action="append", default=[], metavar="AKID:SECRET[:SESSION_TOKEN]")
    p.add_argument("--aws-master", default=None)
    p.add_argument("--clock-offset", type=float, default=0.0)
    p.add_argument("--frozen-time", default=None)
    p.add_argument("--config", default=None, help="JSON file with extra constructor keyword arguments")
    args = p.parse_args(argv)
    kw = {}
    if args.config:
        with open(args.config) as f:
            kw = json.load(f)
    if args.audience:
        kw["audiences"] = args.audience
    if args.signing_key:
        kw["signing_keys"] = [args.signing_key.encode()]
    if args.role_map:
        kw["roles"] = dict(x.split("=", 1) for x in args.role_map)
    if args.aws_key:
        kw["aws_keys"] = {s.split(":", 2)[0]: tuple(s.split(":", 2)[1:]) for s in args.aws_key}
    if args.aws_master:
        kw["aws_master"] = args.aws_master.encode()
    front = PgFront(args.cert, args.key, args.upstream_port, args.upstream_user, args.upstream_password,
                    upstream_host=args.upstream_host, upstream_database=args.upstream_database, mode=args.mode,
                    port=args.port, max_age=args.max_age, endpoint_host=args.endpoint_host,
                    endpoint_port=args.endpoint_port, region=args.region,
                    control_port=None if args.control_port < 0 else args.control_port,
                    clock_offset=args.clock_offset, frozen_time=args.frozen_time, **kw)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    signal.signal(signal.SIGINT, lambda s, f: stop.set())
    front.start()
    sys.stdout.write(json.dumps({"port": front.port, "control_port": front.control_port}) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    front.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
