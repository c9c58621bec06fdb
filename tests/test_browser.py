"""Real-browser test (headless Debian chromium): what AppTest cannot see, the keyboard shortcuts.

Skipped when chromium, chromedriver or selenium is missing. Set FAIRAL_SCREENSHOTS to a
folder to keep screenshots of the Label and Curves pages (the README's come from here).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fairal.store import Store

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, db = free_port(), tmp_path / "fairal.db"
    env = {**os.environ, "FAIRAL_DB": str(db)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "streamlit_app.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        yield url, db
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


def text_appears(driver, text, timeout=90):
    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)


def press(driver, key):
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def label_count(db) -> int:
    with Store(db) as store:
        return store.label_count(store.project_by_name("Adult (demo)")["id"])


def shot(driver, name):
    folder = os.environ.get("FAIRAL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def test_keyboard_labels_skips_and_undoes(server, browser):
    url, db = server
    browser.get(url)
    text_appears(browser, "0 / 400 labels")
    for n, key in enumerate("2121", start=1):
        press(browser, key)
        text_appears(browser, f"{n} / 400 labels")
    assert label_count(db) == 4
    press(browser, "u")
    text_appears(browser, "3 / 400 labels")
    assert label_count(db) == 3
    press(browser, "s")
    text_appears(browser, "Skipped item")
    press(browser, "1")
    text_appears(browser, "4 / 400 labels")
    shot(browser, "label.png")
    browser.get(f"{url}/curves")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CLASS_NAME, "js-plotly-plot")) >= 3)
    time.sleep(1)
    shot(browser, "curves.png")
    assert label_count(db) == 4
