"""The dashboard (`/admin/ui`) in a real browser: Debian's chromium, headless, driven through
chromium-driver by selenium, against the real router binary and the SIMULATED mock Ollama (with
simulated GPU memory). After known traffic the page shows those decisions, draws the VRAM chart
from the mock's samples, updates on a new request, opens a decision's breakdown, and logs no
console error; with an admin key it asks for the key and shows no data until given it.
A screenshot goes to target/ci-artifacts/dashboard.png (the path is printed)."""

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ROOT, Mock, start_router

CHROMIUM = os.environ.get("CHROMIUM_BIN", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", shutil.which("chromedriver") or "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "target" / "ci-artifacts"

MODELS = "qwen2.5-coder:7b,llama3.1:8b,llava:7b"
SIZES = "qwen2.5-coder:7b=4.7,llama3.1:8b=4.9,llava:7b=4.7"


def chat(url, content, request_id, model="auto"):
    # temperature 0: a repeat may be answered from the cache (random sampling never is).
    body = json.dumps(
        {
            "model": model,
            "stream": False,
            "options": {"temperature": 0},
            "messages": [{"role": "user", "content": content}],
        }
    )
    request = urllib.request.Request(
        f"{url}/api/chat",
        data=body.encode(),
        headers={"Content-Type": "application/json", "x-request-id": request_id},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        assert r.status == 200
        return r.headers["x-smarterrouter-model"]


@pytest.fixture
def gpu_mock(workdir):
    m = Mock(workdir, "--models", MODELS, "--sizes-gb", SIZES, "--vram-sim", "llama3.1:8b")
    yield m
    m.process.stop()


def dashboard_router(workdir, mock, admin_key=None):
    process, url = start_router(
        workdir,
        [(mock.url, "ollama")],
        default_model="llama3.1:8b",
        env={"ROUTER_ADMIN_API_KEY": admin_key} if admin_key else None,
        router_lines=["  vram: {monitor_interval_secs: 1}"],
        node_lines=["vram_total_gb: 12"],
    )
    return process, url


@pytest.fixture
def browser():
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,2400"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def severe(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def rows_text(driver):
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#decisions tbody tr")]


def test_the_dashboard_shows_decisions_vram_and_updates_live(workdir, gpu_mock, browser):
    process, url = dashboard_router(workdir, gpu_mock)
    try:
        coder = chat(url, "Write a Python function that parses a CSV file and sums a column.", "dash-code")
        writer = chat(url, "Write a short poem about the autumn sea at night.", "dash-poem")
        assert chat(url, "Write a Python function that parses a CSV file and sums a column.", "dash-again") == coder
        assert coder == "qwen2.5-coder:7b", "the coding prompt goes to the coder"
        assert writer != "llava:7b", "a text prompt never goes to the vision model"

        browser.get(f"{process.admin_url}/admin/ui")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda d: d.find_element(By.ID, "board").is_displayed())
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-request-id="dash-poem"]'))
        code_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-request-id="dash-code"]')
        assert code_row.find_element(By.CSS_SELECTOR, "td.model").text.startswith(coder)
        assert code_row.find_element(By.CSS_SELECTOR, "td.category").text == "coding"
        poem_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-request-id="dash-poem"]')
        assert poem_row.find_element(By.CSS_SELECTOR, "td.category").text == "creativity"
        assert "MISS" in code_row.text and "200" in code_row.text
        again_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-request-id="dash-again"]')
        assert "HIT" in again_row.text, again_row.text

        # The VRAM chart: a line from the mock's /api/ps samples, and the node's budget line.
        def vram_line(d):
            lines = d.find_elements(By.CSS_SELECTOR, "#vram-chart polyline.series")
            return lines and len(lines[0].get_attribute("points").split()) >= 2

        wait.until(vram_line)
        assert browser.find_elements(By.CSS_SELECTOR, "#vram-chart line.limit"), "budget and total drawn"
        legend = browser.find_element(By.ID, "vram-legend").text
        assert "budget 10.8 GB" in legend and "total 12.0 GB" in legend, legend
        # The coder's load shows in the next /api/ps sample (every second).
        wait.until(lambda d: coder in d.find_element(By.ID, "loaded").text)
        events = browser.find_element(By.ID, "events").text
        assert f"loaded {coder}" in events and "a request for it" in events, events
        assert "healthy" in browser.find_element(By.ID, "nodes").text
        totals = browser.find_element(By.ID, "totals").text
        assert "Model requests\n3" in totals, totals
        assert "33.3% of 3 lookups" in totals, totals
        assert browser.find_elements(By.CSS_SELECTOR, "#per-model polyline.series"), "requests per model drawn"

        # A new request shows up without reloading the page.
        factual = chat(url, "What is the capital of Australia, and when was it founded?", "dash-new")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-request-id="dash-new"]'))
        new_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-request-id="dash-new"]')
        assert new_row.find_element(By.CSS_SELECTOR, "td.model").text.startswith(factual)
        assert rows_text(browser)[0] == new_row.text, "newest first"

        # The breakdown opens from the keyboard and names prior, evidence and terms.
        code_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-request-id="dash-code"]')
        code_row.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
        dialog = browser.find_element(By.ID, "detail")
        wait.until(lambda d: "chosen" in dialog.text)
        assert dialog.get_attribute("open") is not None
        assert "prior → evidence → posterior" in dialog.text and "coding" in dialog.text, dialog.text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-breakdown.png"))
        dialog.send_keys(Keys.ESCAPE)
        wait.until(lambda d: d.find_element(By.ID, "detail").get_attribute("open") is None)
        # Focus is back on the row's button, and stays there across the table's redraws.
        time.sleep(2.5)
        focused = browser.switch_to.active_element
        assert focused.tag_name == "button"
        assert focused.find_element(By.XPATH, "./ancestor::tr").get_attribute("data-request-id") == "dash-code"

        shot = ARTIFACTS / "dashboard.png"
        browser.execute_script("window.scrollTo(0, 0)")
        assert browser.save_screenshot(str(shot))
        print(f"dashboard screenshot: {shot}")
        assert severe(browser) == [], "no console errors"
    finally:
        process.stop()


def test_with_an_admin_key_the_page_asks_for_it_and_shows_no_data_without_it(workdir, gpu_mock, browser):
    process, url = dashboard_router(workdir, gpu_mock, admin_key="dash-secret-1")
    try:
        chat(url, "Write a Python function that parses a CSV file and sums a column.", "dash-key-code")
        # On the proxy port too: with a key set, the page (which holds no data) loads anywhere.
        browser.get(f"{url}/admin/ui")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
        assert not browser.find_element(By.ID, "board").is_displayed()
        assert browser.find_elements(By.CSS_SELECTOR, "#decisions tbody tr") == []
        assert "qwen2.5-coder" not in browser.page_source, "no data before the key"
        # The only console error is the refused data request (the 401 that shows the prompt).
        errors = severe(browser)
        assert errors and all("401" in e["message"] for e in errors), errors

        field = browser.find_element(By.ID, "key")
        field.send_keys("wrong-key", Keys.ENTER)
        wait.until(lambda d: "refused" in d.find_element(By.ID, "login-error").text)
        assert not browser.find_element(By.ID, "board").is_displayed()

        browser.find_element(By.ID, "key").send_keys("dash-secret-1", Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-request-id="dash-key-code"]'))
        assert browser.execute_script("return sessionStorage.getItem('smarterrouter.adminKey')") == "dash-secret-1"
        assert "dash-secret-1" not in browser.current_url, "no key in the URL"
        assert "dash-secret-1" not in Path(process.log_path).read_text(errors="replace"), "nor in the logs"
    finally:
        process.stop()
