"""Headless Chromium (Debian's package) driven over its DevTools protocol: a small client, no
browser download. One :class:`Browser` process, one :class:`Tab` on it; the UI check
(``ui_check.py``) uses only ``goto``, ``wait_for``, ``js``, ``click``, ``type_text``, ``key``
and ``screenshot``."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import ClientConnection, connect

from devtools.deployment.processes import Services, free_port, wait_until

# a window wide enough for the connection dialog and the log without wrapping everything
WINDOW = (1400, 1400)
# DevTools messages (a full-page screenshot is a few MB of base64)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class BrowserError(RuntimeError):
    pass


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """A headless Chromium started under ``services`` (so the test stops it however it ends)."""

    def __init__(self, services: Services, profile_dir: Path):
        path = chromium_path()
        if path is None:
            raise BrowserError("no chromium on PATH: apt-get install chromium")
        self.port = free_port()
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.service = services.start(
            "chromium",
            [
                path,
                "--headless=new",
                f"--remote-debugging-port={self.port}",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={profile_dir}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--no-sandbox",  # the test runs as root in a container; the sandbox needs user namespaces
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "about:blank",
            ],
        )
        wait_until(self._listening, "chromium's DevTools endpoint", 60, alive=self.service.alive)

    def _listening(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/json/version", timeout=2).ok
        except requests.RequestException:
            return False

    def new_tab(self) -> Tab:
        answer = requests.put(f"http://127.0.0.1:{self.port}/json/new?about:blank", timeout=10)
        answer.raise_for_status()
        return Tab(answer.json()["webSocketDebuggerUrl"])


class Tab:
    """One page: commands go out with an id; events that arrive meanwhile are ignored."""

    def __init__(self, websocket_url: str):
        self.socket: ClientConnection = connect(websocket_url, max_size=MAX_MESSAGE_BYTES, open_timeout=30)
        self.ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")
        width, height = WINDOW
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def close(self) -> None:
        self.socket.close()

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") != message_id:
                continue
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            return message.get("result", {})

    # ------------------------------------------------------------ what the check uses

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:200]}: {result['exceptionDetails'].get('exception', result)}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        time.sleep(0.5)  # the old document may still answer "complete"
        self.wait_for("document.readyState === 'complete'", f"{url} loaded")

    def wait_for(self, expression: str, what: str, timeout: float = 30) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            # an element cannot come back by value: it counts as found
            try:
                value = self.js(f"(() => {{ const v = ({expression}); return v instanceof Node ? true : v; }})()")
            except BrowserError:  # the page navigated meanwhile (a redirect): ask the new one
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page did not show {what} within {timeout:.0f} s ({expression[:120]})")
            time.sleep(0.25)

    def click(self, selector_js: str, what: str) -> None:
        """Click the element a JavaScript expression finds, once it shows, with the mouse at its
        centre (some widgets open on pointer events, not on ``element.click()``)."""
        self.wait_for(f"!!({selector_js})", what)
        x, y = self._centre(selector_js)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def wheel(self, selector_js: str, delta_y: float) -> None:
        """Turn the mouse wheel over an element (a code editor scrolls its lines only this way)."""
        x, y = self._centre(selector_js)
        self.send("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": delta_y})

    def _centre(self, selector_js: str) -> tuple[float, float]:
        """Where the element is on screen, scrolled into view first."""
        x, y = self.js(
            f"(() => {{ const e = ({selector_js}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return x, y

    def type_text(self, selector_js: str, text: str, what: str) -> None:
        """Focus an input and type into it as a keyboard would (React sees real input events)."""
        self.wait_for(f"!!({selector_js})", what)
        self.js(f"({selector_js}).focus()")
        self.send("Input.insertText", {"text": text})

    def key(self, key: str, code: str, key_code: int, modifiers: int = 0) -> None:
        """Press a key; ``modifiers`` as DevTools counts them (2 = Ctrl)."""
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers},
            )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        return path

    def text(self) -> str:
        """Everything the page shows, as text (dialogs included)."""
        return str(self.js("document.body.innerText"))

    def html(self) -> str:
        return str(self.js("document.documentElement.outerHTML"))
