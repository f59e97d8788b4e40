"""What a user sees in the Airflow 3 UI, checked in headless Chromium (``browser.py``): log in
through the login form, the Add and Edit dialogs of a Mixpanel connection (fields, labels, widget
kinds, the extra JSON saved), the DAG grid, a task's log (its first line), its XCom and the Assets
page; no secret on any page. Every page is kept as a screenshot in the artifact folder."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devtools.deployment.browser import Browser, Tab

if TYPE_CHECKING:
    from devtools.deployment.checks import Report
    from devtools.deployment.processes import Services
    from devtools.deployment.rest import AirflowApi

# The connection form's extra fields: key -> the start of its label. A numeric id must be a
# one-line input; a text area is the widget Airflow draws for a field typed ["integer", "string"].
EXTRA_FIELDS = {
    "project_id": "Project ID (needed with a service account)",
    "region": "Data residency region",
    "workspace_id": "Workspace ID",
    "project_timezone": "Project timezone",
}
ONE_LINE_FIELDS = ("project_id", "workspace_id", "project_timezone")
STANDARD_LABELS = ("API base URL (optional)", "Service account username", "Service account secret")
UI_CONN_ID = "mixpanel_ui_check"
UI_PROJECT_ID = "2195193"
UI_LOGIN = "ui-check.123.mp-service-account"
SETTLE_SECONDS = 1.5  # React re-renders after a click; a screenshot taken at once misses it
# the XCom value's editor (Monaco) and how it is read: a page of lines per wheel turn
XCOM_EDITOR = "td .monaco-editor"
EDITOR_SCROLL_PIXELS = 200
MAX_EDITOR_SCROLLS = 50
EDITOR_REDRAW_SECONDS = 3.0
CTRL = 2  # the DevTools protocol's modifier bit for Ctrl

# the first line of an export task's log (transfers/run_log.py): the days, and why (the run's
# day, the look-back)
FIRST_LOG_LINE = re.compile(r"Exporting events \d{4}-\d\d-\d\d.* \(\d+ days?\): run days? .*look-back days?")
# how the provider's own log lines start (transfers/run_log.py); other lines are Airflow's
OUR_LINES = ("Exporting ", "Run day", "Writing to ", "Committed 20", "Done: ", "Progress: ")

# our log lines that end past the right edge of the box that scrolls them: [start, pixels over]
LINES_PAST_THE_EDGE = """
(() => {
  const markers = %s;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const over = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    if (!markers.some(m => text.includes(m))) continue;
    let box = node.parentElement;
    while (box && !['auto', 'scroll', 'hidden'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
    if (!box) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const right = range.getBoundingClientRect().right;
    const edge = box.getBoundingClientRect().left + box.clientWidth;
    if (right > edge + 1) over.push([text.trim().slice(0, 60), Math.round(right - edge)]);
  }
  return over;
})()
"""

# every field of the open dialog: its label, the element's tag and type, its current value
DIALOG_FIELDS = """
[...document.querySelectorAll('[role=dialog] [data-scope=field][data-part=root], [role=dialog] .chakra-field__root')]
  .map(root => {
    const label = root.querySelector('label');
    const widget = root.querySelector('textarea, input:not([type=hidden]), select');
    const named = root.querySelector('[name]');  // a dropdown's name is on its hidden input
    return widget && {
      label: label ? label.innerText.replace(/\\s*\\*\\s*$/, '').trim() : '',
      name: (named && named.getAttribute('name')) || '',
      tag: widget.tagName.toLowerCase(),
      type: widget.getAttribute('type') || '',
      placeholder: widget.getAttribute('placeholder') || '',
      value: widget.value,
    };
  }).filter(Boolean)
"""


def section_trigger(title: str) -> str:
    """JavaScript finding the button of a closed section of the dialog, by its title."""
    return (
        "[...document.querySelectorAll('[role=dialog] button[aria-expanded=false]')]"
        f".find(b => b.innerText.trim() === {json.dumps(title)})"
    )


VISIBLE = "(e => !!e && e.offsetParent !== null && e.getBoundingClientRect().height > 0)"


@dataclass
class UiCheck:
    base_url: str
    username: str
    password: str
    api: AirflowApi
    report: Report
    artifacts: Path
    secrets: dict[str, str]  # name -> value that must appear on no page
    pages: list[str] = field(default_factory=list)  # every page's text and HTML, for the secret scan
    tab: Tab | None = None

    # ------------------------------------------------------------ plumbing

    @property
    def page(self) -> Tab:
        assert self.tab is not None
        return self.tab

    def shot(self, name: str, scanned: bool = True) -> None:
        """A screenshot; the page's HTML and text kept for the secret scan unless ``scanned`` is
        false (a form the test is typing a secret into holds it, masked on screen)."""
        time.sleep(SETTLE_SECONDS)
        self.page.screenshot(self.artifacts / f"{name}.png")
        if scanned:
            self.pages.append(self.page.html())
            self.pages.append(self.page.text())

    def attempt(self, name: str, step: Callable[[], None]) -> None:
        """One page's checks; a page that fails to show is a failed check, and the others still run."""
        try:
            step()
        except Exception as err:  # reported; a screenshot shows what the page was
            self.report.record(f"browser: {name}", False, f"{type(err).__name__}: {err}")
            with contextlib.suppress(Exception):
                self.shot(f"failed-{name.replace(' ', '-')}")

    def editor_text(self, editor: str) -> str:
        """Every line of a code editor (Airflow shows JSON in one that draws only the lines in
        view), read while its view is scrolled down with the mouse wheel until no new line comes."""
        view = f"document.querySelector({json.dumps(editor + ' .view-lines')})?.innerText ?? ''"
        lines = dict.fromkeys(str(self.page.js(view)).splitlines())
        for _ in range(MAX_EDITOR_SCROLLS):
            self.page.wheel(f"document.querySelector({json.dumps(editor)})", EDITOR_SCROLL_PIXELS)
            before = len(lines)
            deadline = time.monotonic() + EDITOR_REDRAW_SECONDS
            while len(lines) == before and time.monotonic() < deadline:
                time.sleep(0.2)  # the editor redraws on its next animation frame, later on a busy machine
                lines.update(dict.fromkeys(str(self.page.js(view)).splitlines()))
            if len(lines) == before:
                break
        # and its last lines, however the wheel went: Ctrl+End in the editor shows the end
        self.page.click(f"document.querySelector({json.dumps(editor + ' .view-lines')})", "the editor")
        self.page.key("End", "End", 35, modifiers=CTRL)
        time.sleep(EDITOR_REDRAW_SECONDS)
        lines.update(dict.fromkeys(str(self.page.js(view)).splitlines()))
        return "\n".join(lines)

    def dialog_fields(self) -> dict[str, dict[str, Any]]:
        """The dialog's fields, with its "Extra Fields" section open (Airflow shows it closed)."""
        if self.page.js(f"!!{section_trigger('Extra Fields')}"):
            self.page.click(section_trigger("Extra Fields"), "the Extra Fields section")
        time.sleep(SETTLE_SECONDS)
        fields = self.page.js(DIALOG_FIELDS) or []
        return {f["name"].removeprefix("element_") or f["label"]: f for f in fields}

    # ------------------------------------------------------------ the journey

    def login(self) -> None:
        self.page.goto(self.base_url + "/")
        self.page.wait_for("location.pathname.startsWith('/auth')", "the login page")
        self.shot("01-login")
        self.page.type_text("document.querySelector('input[name=username]')", self.username, "the user name")
        self.page.type_text("document.querySelector('input[name=password]')", self.password, "the password")
        self.page.click("document.querySelector('button[type=submit]')", "Sign in")
        self.page.wait_for("!location.pathname.startsWith('/auth')", "the home page after signing in", 60)
        self.report.record("browser: log in through the login form", True, self.page.js("location.pathname"))

    def add_dialog(self) -> None:
        page = self.page
        page.goto(self.base_url + "/connections")
        page.click(
            "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Add Connection')",
            "the Add Connection button",
        )
        page.wait_for("document.querySelector('[role=dialog] input[name=connection_id]')", "the Add dialog")
        page.type_text("document.querySelector('[role=dialog] input[name=connection_id]')", UI_CONN_ID, "its id")
        page.type_text("document.querySelector('[role=dialog] input[role=combobox]')", "Mixpanel", "the type")
        time.sleep(SETTLE_SECONDS)
        page.key("Enter", "Enter", 13)
        page.wait_for("document.querySelector('[role=dialog] [name=element_region]')", "the Mixpanel fields")
        self.shot("02-connection-add-standard-fields")
        # fill it in as a user would: the standard fields first (one section is open at a time)
        page.type_text("document.querySelector('[role=dialog] input[name=login]')", UI_LOGIN, "the username")
        page.type_text(
            "document.querySelector('[role=dialog] input[name=password]')", self.secrets["UI secret"], "the secret"
        )
        fields = self.dialog_fields()
        self.shot("03-connection-add-extra-fields", scanned=False)  # the typed secret is in the form
        self.judge_form("Add", fields)
        project_id = "document.querySelector('[role=dialog] [name=element_project_id]')"
        page.wait_for(f"{VISIBLE}({project_id})", "the Project ID field, open")
        page.type_text(project_id, UI_PROJECT_ID, "the project id")
        page.click(
            "[...document.querySelectorAll('[role=dialog] button')].find(b => b.innerText.trim() === 'Save')", "Save"
        )
        page.wait_for("!document.querySelector('[role=dialog]')", "the dialog closed after Save")
        saved = self.api.call("GET", f"/connections/{UI_CONN_ID}")
        stored = json.loads(saved.get("extra") or "{}")
        self.report.record(
            "browser: the connection saved from the Add dialog has what was typed and no null in its extra",
            str(stored.get("project_id")) == UI_PROJECT_ID
            and None not in stored.values()
            and saved.get("login") == UI_LOGIN
            and bool(saved.get("password")),
            f"login {saved.get('login')!r}, extra {json.dumps(stored)}",
        )

    def edit_dialog(self, conn_id: str, shot: str) -> None:
        page = self.page
        page.goto(self.base_url + "/connections")
        row = (
            "[...document.querySelectorAll('tr')].find(r => [...r.querySelectorAll('td')]"
            f".some(td => td.innerText.trim() === {json.dumps(conn_id)}))"
        )
        page.click(f"{row}?.querySelector('button[aria-label=\"Edit Connection\"]')", f"the Edit button of {conn_id}")
        page.wait_for("document.querySelector('[role=dialog] input[name=connection_id]')", "the Edit dialog")
        fields = self.dialog_fields()
        self.shot(shot)
        self.judge_form(f"Edit ({conn_id})", fields)
        page.js("document.querySelector('[role=dialog] button[aria-label=Close]')?.click()")

    def judge_form(self, dialog: str, fields: dict[str, dict[str, Any]]) -> None:
        missing = [key for key in EXTRA_FIELDS if key not in fields]
        self.report.record(
            f"browser: the {dialog} dialog shows every extra field",
            not missing,
            f"missing {missing}; shown {sorted(fields)}" if missing else ", ".join(EXTRA_FIELDS),
        )
        wrong_labels = {
            key: fields[key]["label"]
            for key, label in EXTRA_FIELDS.items()
            if key in fields and not fields[key]["label"].startswith(label)
        }
        self.report.record(
            f"browser: the {dialog} dialog's extra fields have their labels", not wrong_labels, str(wrong_labels)
        )
        kinds = {key: fields[key]["tag"] for key in ONE_LINE_FIELDS if key in fields}
        self.report.record(
            f"browser: the {dialog} dialog's ids and timezone are one-line inputs, not text areas",
            bool(kinds) and set(kinds.values()) == {"input"},
            str(kinds),
        )
        labels = [f["label"] for f in fields.values()]
        standard = [label for label in STANDARD_LABELS if label not in labels]
        self.report.record(
            f"browser: the {dialog} dialog relabels host, login and password", not standard, f"missing {standard}"
        )
        self.report.record(
            f"browser: the {dialog} dialog's secret is a password input",
            fields.get("password", {}).get("type") == "password",
            str(fields.get("password", {}).get("type")),
        )

    def grid(self, dag_id: str) -> None:
        self.page.goto(f"{self.base_url}/dags/{dag_id}")
        self.page.wait_for(f"document.body.innerText.includes({json.dumps(dag_id)})", "the DAG page")
        self.shot("06-dag-grid")
        self.report.record("browser: the DAG grid shows the DAG", True, dag_id)

    def task_pages(self, dag_id: str, run_id: str, task_id: str) -> None:
        page = self.page
        task_url = f"{self.base_url}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}"
        page.goto(task_url)
        page.wait_for("document.body.innerText.includes('Exporting')", "the task log", 60)
        lines = str(page.js("document.body.innerText")).splitlines()
        first = next((line for line in lines if "Exporting" in line), "")
        self.shot("07-task-log")
        self.report.record(
            "browser: the task log's first export line names the days and why",
            bool(FIRST_LOG_LINE.search(first)),
            first.strip()[:300],
        )
        over = page.js(LINES_PAST_THE_EDGE % json.dumps(OUR_LINES))
        self.report.record(
            "browser: the provider's log lines need no horizontal scrolling",
            not over,
            f"past the edge (start, pixels): {over}" if over else "all within the log box",
        )
        page.goto(task_url + "/xcom")
        page.wait_for("document.body.innerText.includes('return_value')", "the XCom tab", 60)
        page.click("document.querySelector('button[aria-label=\"Expand all extra JSON\"]')", "Expand all")
        page.wait_for(f"document.querySelector({json.dumps(XCOM_EDITOR)})", "the XCom value, expanded")
        self.shot("08-task-xcom")
        text = self.editor_text(XCOM_EDITOR)
        self.pages.append(text)
        self.report.record(
            "browser: the XCom tab shows the manifest with the days exported",
            "from_date" in text and "to_date" in text,
            "; ".join(line.strip() for line in text.splitlines() if "_date" in line)
            or f"read {len(text.splitlines())} lines, the last: {text.splitlines()[-3:]}",
        )
        page.goto(task_url + "/rendered_templates")
        time.sleep(SETTLE_SECONDS)
        self.shot("09-rendered-templates")

    def assets(self, expected: str) -> None:
        self.page.goto(f"{self.base_url}/assets")
        self.page.wait_for(f"document.body.innerText.includes({json.dumps(expected)})", "the asset", 60)
        self.shot("10-assets")
        self.report.record("browser: the Assets page lists the exported data", True, expected)

    def no_secret_anywhere(self) -> None:
        found = sorted({name for name, value in self.secrets.items() for text in self.pages if value in text})
        self.report.record(
            f"browser: no secret on any page ({len(self.pages) // 2} pages)", not found, ", ".join(found)
        )


def run_ui_check(
    *,
    services: Services,
    run_dir: Path,
    artifacts: Path,
    base_url: str,
    username: str,
    password: str,
    api: AirflowApi,
    report: Report,
    secret_values: dict[str, str],
    task: tuple[str, str, str],
    asset: str,
    rest_conn_id: str,
) -> None:
    """The whole journey; screenshots into ``artifacts``. ``task`` = (dag id, run id, task id);
    ``rest_conn_id``: a Mixpanel connection made through the REST API, every extra key named."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*.png"):
        old.unlink()
    check = UiCheck(
        base_url,
        username,
        password,
        api,
        report,
        artifacts,
        {**secret_values, "UI secret": "ui-" + secrets.token_urlsafe(18), "the admin password": password},
    )
    browser = Browser(services, run_dir / "chromium-profile")
    check.tab = browser.new_tab()
    try:
        check.attempt("log in", check.login)
        check.attempt("Add dialog", check.add_dialog)
        check.attempt("Edit dialog", lambda: check.edit_dialog(UI_CONN_ID, "04-connection-edit"))
        check.attempt("Edit dialog (REST)", lambda: check.edit_dialog(rest_conn_id, "05-connection-edit-rest"))
        dag_id, run_id, task_id = task
        check.attempt("DAG grid", lambda: check.grid(dag_id))
        check.attempt("task log and XCom", lambda: check.task_pages(dag_id, run_id, task_id))
        check.attempt("Assets page", lambda: check.assets(asset))
        # the admin password is typed into the login form: it is in no page after that
        check.no_secret_anywhere()
    finally:
        check.page.close()
        report.note(f"browser screenshots: {artifacts}")
