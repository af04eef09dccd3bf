#!/usr/bin/env python3
"""Takes the README's dashboard screenshot: the real router in front of the SIMULATED mock Ollama
(three 4.1-4.9 GB models on a 12 GB node, so a third model makes the router unload one), about two
minutes of mixed traffic (coding, writing, questions, maths, repeats served from the cache, an
unknown model, a burst past the rate limit), then headless chromium at 1366 px wide.

Usage: ~/.cache/smarterrouter/venv/bin/python scripts/dashboard-screenshot.py [OUT.png] [--dark]
(needs target/debug/smarterrouter and mock-ollama: cargo build --workspace --bins)."""

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import tempfile  # noqa: E402

from conftest import Mock, start_router  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

PROMPTS = [
    "Write a Python function that merges two sorted lists.",
    "Write a short poem about the autumn sea at night.",
    "What is the capital of Australia, and when was it founded?",
    "If 3x + 7 = 22, what is x? Show each step.",
    "Refactor this JavaScript: function f(a){return a.map(x=>x*2).filter(x=>x>3)}",
    "Tell me a story about a lighthouse keeper and a fox.",
    "Who wrote The Brothers Karamazov?",
    "Prove that the square root of 2 is irrational.",
]


def chat(url, content, model="auto", temperature=0):
    body = {"model": model, "stream": False, "options": {"temperature": temperature},
            "messages": [{"role": "user", "content": content}]}
    request = urllib.request.Request(f"{url}/api/chat", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    out = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), ROOT / "target/ci-artifacts/dashboard-readme.png"))
    dark = "--dark" in sys.argv
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(d)
        mock = Mock(workdir, "--models", "qwen2.5-coder:7b,llama3.1:8b,mistral:7b",
                    "--sizes-gb", "qwen2.5-coder:7b=4.7,llama3.1:8b=4.9,mistral:7b=4.1",
                    "--parameter-sizes", "qwen2.5-coder:7b=7.6B,llama3.1:8b=8.0B,mistral:7b=7.2B",
                    "--vram-sim", "llama3.1:8b", "--latency-ms", "40")
        process, url = start_router(
            workdir, [(mock.url, "ollama")], default_model="llama3.1:8b",
            env={"ROUTER_RATE_LIMIT_ENABLED": "true", "ROUTER_RATE_LIMIT_REQUESTS_PER_MINUTE": "60"},
            router_lines=["  vram: {monitor_interval_secs: 2}"], node_lines=["vram_total_gb: 12"])
        try:
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < 110:
                chat(url, PROMPTS[i % len(PROMPTS)], temperature=0 if i % 3 else 0.7)
                if i == 20:
                    chat(url, "Summarise the plot of Hamlet in three sentences.", model="mistral:7b")
                if i == 30:
                    chat(url, "hello", model="no-such-model:1b")
                if i == 45:
                    for _ in range(80):
                        chat(url, "Write a Python function that merges two sorted lists.")
                i += 1
                time.sleep(1.2)
            options = Options()
            for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,2000",
                        "--force-dark-mode" if dark else "--disable-features=WebContentsForceDark"]:
                options.add_argument(arg)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            if dark:
                driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            try:
                driver.get(f"{process.admin_url}/admin/ui")
                wait = WebDriverWait(driver, 20)
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#vram-chart polyline.series"))
                Select(driver.find_element(By.ID, "window")).select_by_value("5")
                time.sleep(3)
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out))
                print(out)
            finally:
                driver.quit()
        finally:
            process.stop()
            mock.process.stop()


if __name__ == "__main__":
    main()
