"""Small helpers shared by the integration harness: free ports, bounded polling, bounded calls."""
import random
import socket
import threading
import time

# Outside the kernel's ephemeral range (32768-60999 here), so an outgoing connection never
# takes a port a test is about to listen on.
PORT_RANGE = (20000, 32000)
_handed_out = set()
_lock = threading.Lock()


def free_port():
    """A loopback TCP port in PORT_RANGE that nothing listens on now (checked by binding it)."""
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        with _lock:
            if port in _handed_out:
                continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        with _lock:
            _handed_out.add(port)
        return port
    raise RuntimeError("no free port found in %r" % (PORT_RANGE,))


def wait_for(cond, timeout, what, interval=0.02):
    """Poll cond() until it returns a truthy value; return it. Raise TimeoutError after timeout s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (AssertionError, OSError) as e:  # keep polling on transient failures
            last_exc = e
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)


def port_accepts(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Bounded:
    """Run fn(*args) in a daemon thread; .result(timeout) returns its value or re-raises its
    exception, and fails the test (AssertionError) if it has not finished within the timeout."""

    def __init__(self, fn, *args, **kwargs):
        self._value = None
        self._exc = None
        self._done = threading.Event()

        def run():
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as e:  # noqa: B902 - handed to the caller
                self._exc = e
            finally:
                self._done.set()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout, what="call"):
        if not self._done.wait(timeout):
            raise AssertionError("%s did not finish within %.1fs (hang?)" % (what, timeout))
        if self._exc is not None:
            raise self._exc
        return self._value

    def done(self):
        return self._done.is_set()


def bounded(fn, timeout, what="call"):
    """Call fn() with a hard time limit (see Bounded)."""
    return Bounded(fn).result(timeout, what)
