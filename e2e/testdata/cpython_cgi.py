"""Run CPython's own CGI server tests against `portico serve --cgi`.

Usage: python3 cpython_cgi.py PORTICO_BINARY

CPython's test.test_httpservers.CGIHTTPServerTestCase builds a folder with
a cgi-bin (and scripts whose shebang is a python symlink in that folder),
then sends requests to a CGIHTTPRequestHandler it starts in a thread. Here
each test's setUp starts `portico serve --cgi` on that folder instead, and
the test's requests go to portico. Nothing of the test itself changes.

Prints "PASS name", "FAIL name: reason" or "ERROR name: reason" per test,
then "N passed of M". Exits 0 whatever the results: the caller (e2e
TestCPythonCGIServerTests) decides which must pass.

The original class skips itself when run as root (its server would run
the scripts as root); portico runs them as nobody then, so here it runs,
and the folder is made readable for nobody.
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from test import test_httpservers as th

PORTICO = os.path.abspath(sys.argv[1])
SERVING = re.compile(r"serving http://([0-9.]+):([0-9]+)/")


class NoServerThread(threading.Thread):
    """Stands in for the Python server BaseTestCase.setUp starts."""

    def __init__(self, test_object, request_handler):
        super().__init__(daemon=True)
        self.test_object = test_object

    def run(self):
        self.test_object.server_started.set()
        self.test_object = None

    def stop(self):
        self.join()


# BaseTestCase.setUp looks the class up in its module when it runs.
th.TestServerThread = NoServerThread


class PorticoCGIServerTestCase(th.CGIHTTPServerTestCase):
    __unittest_skip__ = False

    def setUp(self):
        super().setUp()
        if os.geteuid() == 0:
            os.chmod(self.parent_dir, 0o755)  # scripts run as nobody
        self.portico_out = tempfile.TemporaryFile()
        self.portico = subprocess.Popen(
            [PORTICO, "serve", "--cgi", "-b", "127.0.0.1", "-d", self.parent_dir, "0"],
            stdin=subprocess.DEVNULL, stdout=self.portico_out, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            self.portico_out.seek(0)
            m = SERVING.search(self.portico_out.read().decode("utf-8", "replace"))
            if m:
                self.HOST, self.PORT = m.group(1), int(m.group(2))
                return
            if self.portico.poll() is not None or time.monotonic() > deadline:
                self._stop_portico()
                self.tearDown()
                raise RuntimeError("portico serve --cgi did not start")
            time.sleep(0.02)

    def _stop_portico(self):
        if self.portico.poll() is None:
            self.portico.terminate()
            try:
                self.portico.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.portico.kill()
                self.portico.wait()
        self.portico_out.close()

    def tearDown(self):
        try:
            if getattr(self, "connection", None) is not None:
                self.connection.close()
            self._stop_portico()
        finally:
            super().tearDown()


class Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.passed = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test._testMethodName)


def method_name(test):
    """The test method's name, also for a failed subTest."""
    return getattr(test, "test_case", test)._testMethodName


def first_line(err_text):
    lines = [l for l in err_text.strip().splitlines() if l.strip()]
    return lines[-1].strip()[:200] if lines else ""


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(PorticoCGIServerTestCase)
    result = Result()
    suite.run(result)
    for name in result.passed:
        print("PASS", name)
    for test, err in result.failures:
        print("FAIL %s: %s" % (method_name(test), first_line(err)))
    for test, err in result.errors:
        print("ERROR %s: %s" % (method_name(test), first_line(err)))
    for test, why in result.skipped:
        print("SKIP %s: %s" % (method_name(test), why))
    print("%d passed of %d" % (len(result.passed), result.testsRun))


if __name__ == "__main__":
    main()
