"""Make the README's screenshots: label 60 Adult items with oracle answers, then photograph the app.

Needs Debian's chromium + chromium-driver and selenium.   python benchmarks/screenshots.py
"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fairal.projects import ensure_default_project
from fairal.session import LabelingSession
from fairal.store import Store

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results"


def main(n_labels: int = 60, port: int = 8611) -> None:
    folder = Path(tempfile.mkdtemp())
    db = folder / "fairal.db"
    with Store(db) as store:
        session = LabelingSession(store, ensure_default_project(store), "annotator")
        data = session.project.dataset
        for _ in range(n_labels):
            item = session.next_item()
            session.submit(item.item_id, int(data.y[data.positions([item.item_id])[0]]))
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "streamlit_app.py"),
                               "--server.headless", "true", "--server.port", str(port),
                               "--browser.gatherUsageStats", "false"],
                              env={**os.environ, "FAIRAL_DB": str(db)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--window-size=1300,1250", f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        OUT.mkdir(exist_ok=True)
        driver.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(driver, 60).until(lambda d: "labels" in d.find_element(By.TAG_NAME, "body").text)
        time.sleep(1.5)
        driver.save_screenshot(str(OUT / "label.png"))
        driver.get(f"http://127.0.0.1:{port}/curves")
        WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CLASS_NAME, "js-plotly-plot")) >= 3)
        time.sleep(2)
        driver.save_screenshot(str(OUT / "curves.png"))
    finally:
        driver.quit()
        server.terminate()
    print(f"wrote {OUT / 'label.png'} and {OUT / 'curves.png'}")


if __name__ == "__main__":
    main()
