"""A small W3C WebDriver client for Debian's chromium + chromedriver.

It speaks the WebDriver HTTP protocol with ``requests`` (already a dependency), so the
browser test needs no extra Python package. Only what the admin UI test uses is here.
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import List, Optional

import requests

from tests.support.daemon import stop_process

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # W3C web element identifier
# Root in a container with no outbound network: no sandbox, no GPU, no background fetches.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--no-default-browser-check",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--disable-extensions",
                 "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
                 "--hide-scrollbars", "--force-device-scale-factor=1"]
_STARTED = re.compile(r"started successfully on port (\d+)")


def missing_tools() -> List[str]:
    return [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]


class WebDriverError(AssertionError):
    pass


class Browser:
    """One chromedriver process driving one headless chromium session."""

    def __init__(self, width: int = 1024, height: int = 900, timeout: float = 20.0):
        self.workdir = tempfile.mkdtemp(prefix="tunnel-client-browser-")
        self.driver_log = os.path.join(self.workdir, "chromedriver.log")
        with open(self.driver_log, "wb") as log:
            self.proc = subprocess.Popen(
                [shutil.which(CHROMEDRIVER), "--port=0", "--log-level=WARNING"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.http = requests.Session()
        self.http.trust_env = False  # never route loopback traffic through a proxy
        self.session_id: Optional[str] = None
        try:
            self.base = "http://127.0.0.1:%d" % self._wait_for_port(timeout)
            options = {"binary": shutil.which(CHROMIUM),
                       "args": CHROMIUM_ARGS + [
                           "--user-data-dir=" + os.path.join(self.workdir, "profile"),
                           "--window-size=%d,%d" % (width, height)]}
            value = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
                "browserName": "chrome", "goog:chromeOptions": options,
                "goog:loggingPrefs": {"browser": "ALL"},
                "timeouts": {"pageLoad": int(timeout * 1000), "script": 10000}}}})
            self.session_id = value["sessionId"]
        except BaseException:
            self.quit()
            raise

    def _wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.driver_log, errors="replace") as handle:
                found = _STARTED.search(handle.read())
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise WebDriverError("chromedriver did not start:\n" + self.log_text())

    def log_text(self) -> str:
        try:
            with open(self.driver_log, errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""

    def _call(self, method: str, path: str, body=None):
        if self.session_id and not path.startswith("/session/"):
            path = "/session/%s%s" % (self.session_id, path)
        reply = self.http.request(method, self.base + path,
                                  json=body if body is not None else
                                  ({} if method == "POST" else None), timeout=60)
        data = reply.json()
        if reply.status_code != 200:
            error = data.get("value", {})
            raise WebDriverError("%s %s: %s: %s" % (method, path, error.get("error"),
                                                     error.get("message", "")[:500]))
        return data.get("value")

    # --- navigation and script -----------------------------------------------------------

    def get(self, url: str):
        self._call("POST", "/url", {"url": url})

    def execute(self, script: str, *args):
        """Run a function body in the page; ``arguments`` holds ``args``."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def text(self, css: str) -> Optional[str]:
        """textContent of the first match, or None when nothing matches yet."""
        return self.execute("var e = document.querySelector(arguments[0]);"
                            "return e ? e.textContent : null;", css)

    def texts(self, css: str) -> List[str]:
        return self.execute("return Array.prototype.map.call("
                            "document.querySelectorAll(arguments[0]),"
                            "function (e) { return e.textContent; });", css)

    def attribute(self, css: str, name: str) -> Optional[str]:
        return self.execute("var e = document.querySelector(arguments[0]);"
                            "return e ? e.getAttribute(arguments[1]) : null;", css, name)

    # --- input -----------------------------------------------------------------------------

    def find(self, css: str) -> str:
        value = self._call("POST", "/element", {"using": "css selector", "value": css})
        return value[ELEMENT_KEY]

    def click(self, css: str):
        """A real pointer click through WebDriver (scrolls into view, hit-tests)."""
        self._call("POST", "/element/%s/click" % self.find(css))

    # --- output ----------------------------------------------------------------------------

    def console(self) -> List[dict]:
        """Console entries since the last call (chromedriver drains its buffer)."""
        return self._call("POST", "/se/log", {"type": "browser"}) or []

    def console_errors(self) -> List[str]:
        return [entry.get("message", "") for entry in self.console()
                if entry.get("level") == "SEVERE"]

    def set_size(self, width: int, height: int):
        self._call("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path: str):
        data = base64.b64decode(self._call("GET", "/screenshot"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)

    def quit(self):
        if self.session_id:
            try:
                self._call("DELETE", "/session/%s" % self.session_id)
            except (requests.RequestException, WebDriverError, ValueError):
                pass
            self.session_id = None
        stop_process(self.proc)
        self.http.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
