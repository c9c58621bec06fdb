"""Real-browser test (headless Debian chromium): the whole annotation flow, end to end.

What AppTest cannot see: the keyboard shortcuts, the background worker, a real session's
sign-in and sign-out. Skipped when chromium, chromedriver or selenium is missing. Screenshots
of each step go to ``tests/output/`` (or the folder in ``FAIRAL_SCREENSHOTS``).
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fairal.retrainer import stop_worker
from fairal.store import Store

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("FAIRAL_SCREENSHOTS", ROOT / "tests" / "output"))
ADMIN, ADMIN_PASSWORD = "admin", "admin password"
ANNOTATOR, ANNOTATOR_PASSWORD = "alice", "alice password"
PROJECT = "German e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    # As on a fresh clone: the database's folder does not exist yet; the app creates it.
    db = (tmp_path / "clone" / ".fairal" / "fairal.db").resolve()
    env = {**os.environ, "FAIRAL_DB": str(db)}
    env.pop("FAIRAL_WORKER", None)  # a real run: the app starts its background worker
    console = tmp_path / "server-console.txt"  # where the operator reads the setup code
    try:
        with running_app(env, console) as url:
            yield url, db, console
    finally:
        stop_worker(db)  # it outlives the app by design


@contextlib.contextmanager
def running_app(env: dict, console):
    """``streamlit run`` of the app on a free local port, its console written to ``console``; yields
    the address once the server answers its health check, and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "streamlit_app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"],
        env=env, cwd=ROOT, stdout=open(console, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1400,1100", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def text_appears(driver, text, timeout=90):
    try:
        WebDriverWait(driver, timeout).until(lambda d: text in body(d))
    except Exception:  # keep the page as it was, and say what it showed
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / "failed.png"))
        raise AssertionError(f"{text!r} did not appear within {timeout} s; the page said: {body(driver)[:1500]!r} "
                             f"(screenshot {SHOTS / 'failed.png'})") from None


def idle(driver, seconds=0.5):
    """Wait for the script run to end (Streamlit's running indicator is gone)."""
    time.sleep(0.3)
    WebDriverWait(driver, 120).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
    time.sleep(seconds)


def widget(driver, key, part="input", timeout=90):
    selector = f".st-key-{key} {part}"
    WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, selector))
    return driver.find_element(By.CSS_SELECTOR, selector)


def type_into(driver, key, text, then=Keys.TAB):
    field = widget(driver, key)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text + then)
    idle(driver)


def choose(driver, key, text, *, multi=False):
    """Pick the first option matching ``text`` in a selectbox or multiselect (a combo box)."""
    field = widget(driver, key)
    field.click()
    field.send_keys(text)
    time.sleep(0.5)
    field.send_keys(Keys.ENTER)
    if multi:  # a multiselect stays open for more choices
        field.send_keys(Keys.ESCAPE)
    idle(driver)


def click(driver, key):
    widget(driver, key, "button").click()
    idle(driver)


def go(driver, page):
    """Open a page from the sidebar (loading its URL would start a new, signed-out session)."""
    links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
    next(link for link in links if page in link.text.split()).click()
    idle(driver)


def press(driver, key):
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def shot(driver, name, show=None):
    """Save a screenshot; ``show``: a CSS selector scrolled into view first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    if show:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})",
                              driver.find_elements(By.CSS_SELECTOR, show)[-1])
        time.sleep(0.3)
    driver.save_screenshot(str(SHOTS / name))


def sign_in(driver, name, password):
    text_appears(driver, "Sign in to fairal")
    type_into(driver, "login_name", name)
    type_into(driver, "login_password", password, then=Keys.ENTER)


def trainer_paths(driver) -> dict:
    """{trace name: (marker colour, budgets)} of the disparity-vs-F-score chart's trainer paths."""
    return driver.execute_script("""
        const chart = document.querySelector('.st-key-curves_tradeoff .js-plotly-plot');
        if (!chart || !chart.data) return {};
        const out = {};
        for (const t of chart.data) if (t.showlegend !== false) out[t.name] = [t.marker.color, t.customdata];
        return out;""")


def setup_code(console: Path) -> str:
    """The one-time code the app printed in its server console (README: the first admin needs it)."""
    found = re.search(r"fairal setup code: ([0-9a-f]{16})", console.read_text(errors="replace"))
    assert found, console.read_text(errors="replace")
    return found.group(1)


def test_admin_sets_up_a_project_and_an_annotator_labels_it(server, browser):
    url, db, console = server
    # 1. A new installation asks for its first admin, on whichever page's address was opened.
    browser.get(f"{url}/label")
    text_appears(browser, "Create the first admin account")
    assert "Page not found" not in body(browser)
    # The first page run started the background worker, though the database folder did not exist.
    log = Path(f"{db}.worker.log")
    WebDriverWait(browser, 60, poll_frequency=0.5).until(
        lambda _: log.exists() and "watching" in log.read_text(errors="replace"))
    type_into(browser, "login_setup_code", setup_code(console))
    type_into(browser, "login_new_name", ADMIN)
    type_into(browser, "login_new_password", ADMIN_PASSWORD)
    type_into(browser, "login_new_again", ADMIN_PASSWORD, then="")
    shot(browser, "01-first-admin.png")
    click(browser, "login_create")
    text_appears(browser, "Label · Adult (demo)", timeout=180)  # the demo project is prepared on first sign-in
    shot(browser, "02-admin-label.png")

    # 2. A small German project.
    assert browser.current_url.endswith("/label")
    browser.get(url)  # the root leads on to Label (signed in again by the session cookie)
    text_appears(browser, "Label · Adult (demo)")
    assert browser.current_url.endswith("/label") and "Page not found" not in body(browser)
    go(browser, "Setup")
    choose(browser, "setup_dataset", "german")
    choose(browser, "setup_trainers", "head", multi=True)  # two trainers: two paths on Curves
    type_into(browser, "setup_name", PROJECT)
    type_into(browser, "setup_budget", "20")
    click(browser, "setup_create")
    text_appears(browser, f"Created {PROJECT}", timeout=120)
    shot(browser, "03-setup.png", show='[data-testid="stAlert"]')

    # 3. An annotator account, assigned to it.
    go(browser, "Annotators")
    type_into(browser, "ann_new_name", ANNOTATOR)
    type_into(browser, "ann_new_password", ANNOTATOR_PASSWORD)
    choose(browser, "ann_new_projects", PROJECT, multi=True)
    click(browser, "ann_create_submit")
    text_appears(browser, f"Created annotator {ANNOTATOR}, assigned to {PROJECT}.")
    shot(browser, "04-annotators.png")

    # 4. The annotator signs in and sees only Label, on their project.
    click(browser, "app_sign_out")
    sign_in(browser, ANNOTATOR, ANNOTATOR_PASSWORD)
    text_appears(browser, f"Label · {PROJECT}")
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a[href$="/setup"]')
    assert "Curves" not in body(browser) and "Annotators" not in body(browser)
    shot(browser, "05-annotator-label.png")

    # 5. Ten labels with the keyboard (1 / 2), each shown at once: training runs in the worker.
    text_appears(browser, "0 / 20 labels")
    for n, key in enumerate("1212121121", start=1):
        press(browser, key)
        text_appears(browser, f"{n} / 20 labels ({n} by you)", timeout=60)
    press(browser, "u")
    text_appears(browser, "9 / 20 labels")
    press(browser, "2")
    text_appears(browser, "10 / 20 labels")
    shot(browser, "06-annotator-labeled.png")
    with Store(db) as store:
        project = store.project_by_name(PROJECT)
        assert store.label_count(project["id"]) == 10

    # A reload keeps the annotator signed in (session cookie), on the same progress.
    browser.refresh()
    text_appears(browser, f"Signed in as {ANNOTATOR}")
    text_appears(browser, "10 / 20 labels")

    # 6. The admin signs in at a page's own address and lands on that page.
    click(browser, "app_sign_out")
    browser.get(f"{url}/curves")
    sign_in(browser, ADMIN, ADMIN_PASSWORD)
    text_appears(browser, "Curves · Adult (demo)")
    assert "Page not found" not in body(browser)

    # 7. Switching project in the sidebar gives the keyboard back to the page: "1" labels at once.
    browser.get(f"{url}/label")  # an address typed by hand: still signed in (cookie), on that page
    text_appears(browser, "Label · Adult (demo)")
    assert "Sign in to fairal" not in body(browser)
    choose(browser, "label_project", PROJECT)
    text_appears(browser, f"Label · {PROJECT}")
    text_appears(browser, "10 / 20 labels")
    time.sleep(1)  # the focus is returned by a script in a frame once the page has drawn
    ActionChains(browser).send_keys("1").perform()  # to whatever has the focus, as a person's key
    text_appears(browser, "11 / 20 labels (1 by you)", timeout=30)

    # 8. The admin sees the worker's curve points: one path per trainer, each its own colour.
    go(browser, "Curves")
    choose(browser, "curves_project", PROJECT)
    text_appears(browser, f"Curves · {PROJECT}")
    text_appears(browser, "The background worker retrains the models")
    WebDriverWait(browser, 90, poll_frequency=1).until(
        lambda d: all(max(budgets) >= 11 for _, budgets in trainer_paths(d).values())
        and len(trainer_paths(d)) == 2)
    paths = trainer_paths(browser)
    assert sorted(paths) == ["erm · entropy", "head · entropy"]
    assert len({colour for colour, _ in paths.values()}) == 2
    assert all(budgets == sorted(budgets) for _, budgets in paths.values())
    headline = browser.find_element(By.CSS_SELECTOR, '[data-testid="stTable"]').text
    assert "erm" in headline and "head" in headline  # one headline row per trainer
    time.sleep(1)
    shot(browser, "07-admin-curves.png")
    with Store(db) as store:
        assert store.curve_frame(project["id"])["budget"].max() >= 11
