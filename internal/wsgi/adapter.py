# portico's bundled WSGI adapter: one synchronous worker process.
#
# Usage (run by portico, not by hand):
#     python3 adapter.py SOCKET MODULE:CALLABLE DIR
#     python3 adapter.py --check MODULE:CALLABLE DIR   (import, report, exit)
#
# The worker imports the app (DIR first on sys.path, and as the working
# directory), listens on the unix socket SOCKET, and only then writes
# "ready" to file descriptor 3. If the import fails it writes
# "error <reason>" there instead, prints the traceback on stderr and exits 1.
#
# It then serves HTTP/1.1 on the socket, one request per connection, one
# connection at a time (a sync worker). portico is the only client: it has
# already read the whole request body, removed the headers a client could use
# to spoof what follows, and passes what only it knows in X-Portico-* headers:
#     X-Portico-Script-Name   SCRIPT_NAME (the route prefix); the request
#                             target is then PATH_INFO, still %-encoded
#     X-Portico-Remote-Addr   REMOTE_ADDR       X-Portico-Remote-Port  REMOTE_PORT
#     X-Portico-Server-Name   SERVER_NAME       X-Portico-Server-Port  SERVER_PORT
#     X-Portico-Scheme        wsgi.url_scheme   X-Portico-Protocol     SERVER_PROTOCOL
#     X-Portico-Request-Uri   REQUEST_URI and RAW_URI (as the client sent it)
#     X-Portico-Ping          not a request: answer 204 at once (health check)
# The environ is built here from scratch (PEP 3333), not by wsgiref.
#
# Only the standard library is used.

import json
import os
import re
import stat
import signal
import socket
import socketserver
import sys
import threading
import traceback
import http.client
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

PRIVATE = "x-portico-"

# Request headers that never become HTTP_* variables: hop-by-hop ones, the
# two given as CONTENT_*, and Proxy (httpoxy: HTTP_PROXY steers outbound HTTP
# clients, CVE-2016-5385).
SKIP_REQUEST = {
    "host", "content-type", "content-length", "proxy", "connection", "keep-alive",
    "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection",
    "expect",
}

# Response headers the adapter owns (framing) and drops from the app's list.
SKIP_RESPONSE = {
    "connection", "keep-alive", "transfer-encoding", "te", "trailer",
    "upgrade", "proxy-connection",
}

NO_BODY_STATUS = {204, 304}

# A header name (RFC 9110 section 5.6.2 token).
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")

# portico has already applied its own header limits (max header bytes);
# these only bound a broken peer, and must not be stricter.
MAX_HEADERS = 10000
MAX_HEADER_LINE = 1 << 20
http.client._MAXLINE = MAX_HEADER_LINE  # the request line (http.server)


# A multi-line message (a traceback, one write to wsgi.errors) goes to
# stderr as one framed line, which portico logs as one record: FRAME, a
# kind, a space, the text as a JSON string.
FRAME = "\x1eportico:"
MAX_FRAME_TEXT = 60000  # portico splits longer lines


def log_message(kind, text):
    if len(text) > MAX_FRAME_TEXT:
        text = text[:MAX_FRAME_TEXT // 2] + "\n[... cut ...]\n" + text[-MAX_FRAME_TEXT // 2:]
    try:
        sys.stderr.write(FRAME + kind + " " + json.dumps(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def log_exception():
    """The exception being handled, as one log record."""
    log_message("traceback", traceback.format_exc())


class ErrorStream:
    """wsgi.errors: what the app writes up to a newline is one log record,
    so a traceback written by its logger (Flask, Django) is one entry."""

    def __init__(self):
        self.buf = []

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors takes str, not %s" % type(s).__name__)
        self.buf.append(s)
        if s.endswith("\n"):
            self.flush()

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        text = "".join(self.buf)
        self.buf = []
        if not text:
            return
        if "\n" in text.rstrip("\n"):
            log_message("errors", text)
        else:
            try:
                sys.stderr.write(text if text.endswith("\n") else text + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


def load_app(spec, app_dir):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError("want MODULE:CALLABLE, got %r" % spec)
    __import__(module_name)
    obj = sys.modules[module_name]
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                "module %r has no attribute %r" % (module_name, attr)) from None
    if not callable(obj):
        raise TypeError("%s:%s is not callable (it is %s)" % (
            module_name, attr, type(obj).__name__))
    return obj


class Input:
    """wsgi.input: the request body, bounded to CONTENT_LENGTH so an app
    reading to EOF never blocks on the connection."""

    def __init__(self, rfile, length):
        self.rfile = rfile
        self.left = length

    def read(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.rfile.read(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def readline(self, size=-1):
        if self.left <= 0:
            return b""
        if size is None or size < 0 or size > self.left:
            size = self.left
        data = self.rfile.readline(size)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class ClientGone(Exception):
    pass


class Headers:
    """The request headers as (name, value) pairs, looked up without regard
    to case: what http.server's email-based parser gives, at a fifth of its
    cost."""

    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.pairs:
            if k.lower() == name:
                return v
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "portico"
    sys_version = ""
    pending = None  # response bytes held back (send_headers)

    def parse_request(self):
        """The request line and headers, as portico's Go client writes them
        (it has already enforced its own limits on what the client sent)."""
        self.command = None
        self.close_connection = True
        self.request_version = self.default_request_version
        self.requestline = line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(400, "Bad request line %r" % line)
            return False
        self.command, self.path, self.request_version = words
        pairs = []
        readline = self.rfile.readline
        while True:
            raw = readline(MAX_HEADER_LINE + 1)
            if len(raw) > MAX_HEADER_LINE or len(pairs) >= MAX_HEADERS:
                self.send_error(431)
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.partition(b":")
            if not sep:
                self.send_error(400, "Bad header line")
                return False
            pairs.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
        self.headers = Headers(pairs)
        return True

    def log_message(self, format, *args):
        pass  # portico writes the access log

    def do_request(self):
        self.close_connection = True
        if self.headers.get("X-Portico-Ping") is not None:
            # portico checking that an idle worker still answers; the app
            # is not involved.
            self.send(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            return
        app = self.server.app
        environ = self.build_environ()
        self.status = None
        self.out_headers = None
        self.headers_sent = False
        self.chunked = False
        self.length = None  # Content-Length promised by the app
        self.written = 0
        self.head = environ["REQUEST_METHOD"] == "HEAD"
        result = None
        try:
            result = app(environ, self.start_response)
            if isinstance(result, FileWrapper) and self.send_file(result):
                return
            # A one-element list is a complete body: give it a length
            # instead of chunking (as gunicorn does).
            if (isinstance(result, (list, tuple)) and len(result) == 1
                    and self.status is not None and self.length is None
                    and not self.headers_sent and not self.bodiless()):
                data = result[0]
                if not isinstance(data, bytes):
                    raise TypeError("app returned %s in its body, want bytes"
                                    % type(data).__name__)
                self.out_headers.append(("Content-Length", str(len(data))))
                self.length = len(data)
            for data in result:
                self.write(data)
                if self.head and self.headers_sent:
                    break  # HEAD: the headers are all there is to send
            if not self.headers_sent:
                if self.status is None:
                    raise RuntimeError("app returned without calling start_response")
                if self.length is None and not self.bodiless():
                    self.out_headers.append(("Content-Length", "0"))
                    self.length = 0
                self.send_headers()
            self.finish_body()
        except ClientGone:
            pass
        except Exception:
            log_exception()
            if not self.headers_sent or self.pending is not None:
                # Nothing has gone out yet: a clean 500 instead.
                self.pending = None
                try:
                    self.send_error_500()
                except ClientGone:
                    pass
            # else: the connection is closed without the final chunk (or
            # short of Content-Length), so portico knows it is cut short.
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    log_exception()
            # Read what the app left of the body (portico has sent it all
            # already): closing a socket with unread input sends a reset,
            # which can destroy the response before portico reads it.
            try:
                while environ["wsgi.input"].read(65536):
                    pass
            except OSError:
                pass
        sys.stderr.flush()

    def send_file(self, wrapper):
        """wsgi.file_wrapper over a regular file: the kernel copies it to
        the socket (os.sendfile), no bytes pass through Python. Returns
        False, having sent nothing, when the fast path does not apply."""
        if self.status is None or self.headers_sent:
            return False
        try:
            fd = wrapper.filelike.fileno()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, ValueError):
            return False
        left = max(st.st_size - offset, 0)
        if self.length is None:
            self.out_headers.append(("Content-Length", str(left)))
            self.length = left
        left = min(left, self.length)
        self.send_headers()
        self.send(b"")  # the headers first
        if not self.no_body:
            out = self.connection.fileno()
            while left > 0:
                try:
                    n = os.sendfile(out, fd, offset, min(left, 1 << 30))
                except BlockingIOError:
                    continue
                except OSError:
                    raise ClientGone() from None
                if n == 0:
                    break  # the file shrank: finish_body reports it
                offset += n
                left -= n
                self.written += n
            self.finish_body()
        return True

    def bodiless(self):
        return self.head or int(self.status[:3]) in NO_BODY_STATUS

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_request
    do_OPTIONS = do_TRACE = do_CONNECT = do_PROPFIND = do_request

    def __getattr__(self, name):
        # Any other method (WebDAV, custom) goes to the app too.
        if name.startswith("do_"):
            return self.do_request
        raise AttributeError(name)

    def build_environ(self):
        h = self.headers
        private = {}
        env_http = {}
        for name, value in h.items():
            lname = name.lower()
            if lname.startswith(PRIVATE):
                private[lname[len(PRIVATE):]] = value
                continue
            if lname in SKIP_REQUEST or "_" in lname:
                continue
            key = "HTTP_" + lname.upper().replace("-", "_")
            if key in env_http:
                sep = "; " if key == "HTTP_COOKIE" else ", "
                env_http[key] += sep + value
            else:
                env_http[key] = value
        # The target as sent: http.server rewrites a leading "//" in
        # self.path, and PATH_INFO must be what the client asked for.
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else self.path
        query = ""
        if "?" in target:
            target, query = target.split("?", 1)
        # PEP 3333: native strings holding the bytes as latin-1. portico
        # sends the full path; SCRIPT_NAME (the route prefix) is cut off.
        path = unquote(target, encoding="latin-1")
        script = private.get("script-name", "")
        if script and path.startswith(script) and path[len(script):len(script) + 1] in ("", "/"):
            path = path[len(script):]
        else:
            script = ""
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": script,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": private.get("server-name", "localhost"),
            "SERVER_PORT": private.get("server-port", "80"),
            "SERVER_PROTOCOL": private.get("protocol", "HTTP/1.1"),
            "SERVER_SOFTWARE": "portico",
            "REMOTE_ADDR": private.get("remote-addr", ""),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": private.get("scheme", "http"),
            "wsgi.errors": self.server.errors,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": FileWrapper,
        }
        if "host" in private:
            environ["HTTP_HOST"] = private["host"]
        if "remote-port" in private:
            environ["REMOTE_PORT"] = private["remote-port"]
        if "request-uri" in private:
            environ["REQUEST_URI"] = environ["RAW_URI"] = private["request-uri"]
        if environ["wsgi.url_scheme"] == "https":
            environ["HTTPS"] = "on"
        ctype = h.get("Content-Type")
        if ctype is not None:
            environ["CONTENT_TYPE"] = ctype
        length = 0
        clen = h.get("Content-Length")
        if clen is not None:
            try:
                length = int(clen)
            except ValueError:
                length = 0
            environ["CONTENT_LENGTH"] = str(length)
        environ["wsgi.input"] = Input(self.rfile, length)
        environ.update(env_http)
        return environ

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() \
                or status[3] != " " or "\r" in status or "\n" in status:
            raise ValueError("invalid status %r" % (status,))
        if int(status[:3]) < 200:
            # 1xx are not final responses: WSGI has no way to send them.
            raise ValueError("status %r is not a final response" % (status,))
        out = []
        length = None
        for item in headers:
            name, value = item
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header %r: name and value must be str" % (item,))
            if not TOKEN.match(name) or "\r" in value or "\n" in value or "\0" in value:
                raise ValueError("invalid header %r" % (item,))
            lname = name.lower()
            if lname in SKIP_RESPONSE:
                continue
            if lname == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    raise ValueError("invalid Content-Length %r" % value) from None
            out.append((name, value))
        self.status = status
        self.out_headers = out
        self.length = length
        return self.write

    def send_headers(self):
        no_body = self.bodiless()
        if self.length is None and not no_body:
            self.chunked = True
        lines = ["HTTP/1.1 " + self.status]
        for name, value in self.out_headers:
            lines.append(name + ": " + value)
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
        lines.append("Connection: close")
        block = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.headers_sent = True
        self.no_body = no_body
        # Held until the first body bytes (or the end), so that a small
        # response leaves in one write.
        self.pending = block

    def send(self, data):
        if self.pending is not None:
            data = self.pending + data
            self.pending = None
        if not data:
            return
        try:
            self.wfile.write(data)
        except OSError:
            raise ClientGone() from None

    def write(self, data):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("app wrote %s, want bytes" % type(data).__name__)
        if self.status is None:
            raise AssertionError("write() before start_response")
        if not data:
            return
        if not self.headers_sent:
            self.send_headers()
        if self.no_body:
            return
        if self.chunked:
            self.send(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")
            return
        room = self.length - self.written
        if room <= 0:
            return
        if len(data) > room:
            data = data[:room]
        self.written += len(data)
        self.send(data)

    def finish_body(self):
        if self.no_body:
            self.send(b"")  # the headers
            return
        if self.chunked:
            self.send(b"0\r\n\r\n")
        else:
            self.send(b"")  # headers not yet out (an empty body)
        if not self.chunked and self.written < self.length:
            # The app promised more than it sent: closing the connection
            # short of Content-Length tells portico the body is incomplete.
            print("portico wsgi: app sent %d of the %d bytes its Content-Length promised"
                  % (self.written, self.length), file=sys.stderr)

    def send_error_500(self):
        body = b"500 Internal Server Error\n"
        self.headers_sent = True
        self.send(b"HTTP/1.1 500 Internal Server Error\r\n"
                  b"Content-Type: text/plain; charset=utf-8\r\n"
                  b"X-Portico-Error: app\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


class FileWrapper:
    """wsgi.file_wrapper: iterate a file-like object in blocks."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        while True:
            data = self.filelike.read(self.blksize)
            if not data:
                return
            yield data


class Server(socketserver.UnixStreamServer):
    request_queue_size = 16
    errors = ErrorStream()

    def handle_error(self, request, client_address):
        log_exception()


def watch_parent(ppid):
    # If portico dies without stopping us (SIGKILL), exit instead of
    # lingering as an orphan.
    import time
    while True:
        time.sleep(1)
        if os.getppid() != ppid:
            os._exit(1)


def serve(server):
    """socketserver's serve_forever without its select loop: one blocking
    accept per connection (a signal handler's exception still ends it)."""
    while True:
        try:
            request, addr = server.get_request()
        except ConnectionAbortedError:
            continue  # the peer gave up before accept
        try:
            server.process_request(request, addr)  # handles, then closes
        except Exception:
            server.handle_error(request, addr)
            server.shutdown_request(request)


def main():
    sock_path, spec, app_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        os.set_inheritable(3, False)  # not for the app's own children
        status = os.fdopen(3, "w")
    except OSError:
        status = None

    def report(line):
        if status is not None:
            status.write(line.replace("\n", " ").strip() + "\n")
            status.flush()

    # The app's folder comes first on sys.path; the adapter's own is removed.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p != here]
    sys.path.insert(0, app_dir)
    try:
        os.chdir(app_dir)
        app = load_app(spec, app_dir)
    except BaseException as e:
        log_exception()
        report("error %s: %s" % (type(e).__name__, e))
        sys.exit(1)

    if sock_path == "--check":  # portico check: the import is all
        report("ready %d" % os.getpid())
        sys.exit(0)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    server = Server(sock_path, Handler)
    server.app = app
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    report("ready %d" % os.getpid())
    if status is not None:
        status.close()
    try:
        serve(server)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
