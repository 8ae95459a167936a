"""A headless Chromium driven over the DevTools protocol, for tests that open our HTML pages.

The protocol runs over two pipes (``--remote-debugging-pipe``: the browser reads JSON commands,
each ended by a NUL byte, from its fd 3 and writes replies and events to its fd 4), so no port,
no websocket library and no network are needed. :func:`open_page` loads one file, records what
the page logged and every request it made, and prints it to PDF.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES_FILE = Path(__file__).resolve().parents[1] / ".ci" / "browser-packages.txt"
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser_packages() -> list[str]:
    """The Debian packages the browser tests need, from the one list ``.ci/run`` installs."""
    lines = PACKAGES_FILE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def find_chromium() -> str | None:
    """The browser to use: ``$B2P_CHROMIUM``, else the first Chromium or Chrome on PATH."""
    env = os.environ.get("B2P_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, _NAMES) if p), None)


@dataclass
class PageRun:
    """What happened while a page loaded, and its print as PDF bytes."""

    console: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    pdf: bytes = b""


class _Pipe:
    """Commands to the browser and its answers, NUL-separated JSON over two pipes."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float) -> None:
        self._w, self._r, self._deadline = to_browser, from_browser, deadline
        self._buf = b""
        self._next = 0
        self.events: list[dict] = []

    def _read_message(self) -> dict:
        while b"\0" not in self._buf:
            left = self._deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("the browser closed its pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and wait for its result; events seen meanwhile are kept."""
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        """The first event ``method`` (already seen or still to come)."""
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read_message()
            self.events.append(ev)
            if ev.get("method") == method:
                return ev


def _record(run: PageRun, ev: dict) -> None:
    method, p = ev.get("method"), ev.get("params", {})
    if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        run.console.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in p.get("args", [])))
    elif method == "Runtime.exceptionThrown":
        run.console.append(p.get("exceptionDetails", {}).get("text", "exception"))
    elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
        run.console.append(p["entry"].get("text", ""))
    elif method == "Network.requestWillBeSent":
        run.requests.append(p.get("request", {}).get("url", ""))


def open_page(chromium: str, page: Path, timeout: float = 60.0, **pdf_options) -> PageRun:
    """Load ``page`` in a fresh headless browser, then print it (``Page.printToPDF`` options)."""
    import fcntl  # POSIX only, like the descriptor passing below

    deadline = time.monotonic() + timeout
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()

    # In the child, before exec. Not pass_fds=(3, 4): that needs 3 and 4 open here, which
    # they need not be. Python's own descriptors are not inheritable (PEP 446), so with
    # close_fds=False only 0-2 and these two reach the browser.
    def on_fds_3_and_4() -> None:
        # copies above 9 first, so placing one cannot overwrite the other whatever 3 and 4 are
        a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
        for src, fd in ((a, 3), (b, 4)):
            os.dup2(src, fd)
            os.set_inheritable(fd, True)

    with tempfile.TemporaryDirectory(prefix="b2p-chromium-") as profile:
        args = [chromium, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--mute-audio",
                # nothing may leave the machine even if the page asked for it
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        proc = subprocess.Popen(args + ["about:blank"], close_fds=False,
                                preexec_fn=on_fds_3_and_4, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(res_w)
        pipe = _Pipe(cmd_w, res_r, deadline)
        run = PageRun()
        try:
            target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.call("Target.attachToTarget", targetId=target,
                                flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session)
            pipe.events.clear()  # what about:blank did is not the page's
            pipe.call("Page.navigate", session, url=page.resolve().as_uri())
            pipe.wait_for("Page.loadEventFired")
            pdf = pipe.call("Page.printToPDF", session, **pdf_options)
            run.pdf = base64.b64decode(pdf["data"])
            for ev in pipe.events:
                _record(run, ev)
            try:
                pipe.call("Browser.close")
            except (EOFError, OSError, TimeoutError):
                pass
        finally:
            os.close(cmd_w)
            os.close(res_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return run
