"""A tiny WSGI app for portico's three-apps example.

Each gunicorn instance runs this same file; INSTANCE (or, failing that, the
port gunicorn binds) tells which one answered, so the load balancing is
visible:

    $ curl -s http://127.0.0.1:8080/
    hello from instance 2 (pid 4242)

Routes:
    /           who answered, plus the forwarding headers portico set
    /healthz    200 "ok" (used by portico's active health checks)
    /slow?s=N   sleeps N seconds (max 10) before answering
"""

import json
import os
import time
from urllib.parse import parse_qs

INSTANCE = os.environ.get("INSTANCE", "?")


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        body = b"ok\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/slow":
        qs = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            secs = min(float(qs.get("s", ["1"])[0]), 10.0)
        except ValueError:
            secs = 1.0
        time.sleep(secs)
    if environ.get("HTTP_ACCEPT", "").startswith("application/json"):
        info = {
            "instance": INSTANCE,
            "pid": os.getpid(),
            "path": path,
            "host": environ.get("HTTP_HOST"),
            "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "x_forwarded_proto": environ.get("HTTP_X_FORWARDED_PROTO"),
            "x_forwarded_host": environ.get("HTTP_X_FORWARDED_HOST"),
            "via": environ.get("HTTP_VIA"),
        }
        body = (json.dumps(info) + "\n").encode()
        ctype = "application/json"
    else:
        body = ("hello from instance %s (pid %d)\n" % (INSTANCE, os.getpid())).encode()
        ctype = "text/plain; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]
