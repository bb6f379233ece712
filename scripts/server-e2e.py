#!/usr/bin/env python3
"""End-to-end checks of `swiftlet serve` with real third-party programs, each bounded in time.

  server-e2e.py browser --swiftlet BIN --model GGUF [--screenshot PNG]
      Headless Chromium (Debian's chromium + chromium-driver, driven over WebDriver) opens the chat
      page, sends a message, and the streamed reply must appear in the DOM and equal the API's
      greedy reply; then a long generation is stopped with the Stop button.
  server-e2e.py nginx --swiftlet BIN --model GGUF [--config docs/nginx/swiftlet.conf]
      Two replicas behind nginx (the repository's sample configuration): requests are spread over
      both, a streamed reply passes through unbuffered, and once one replica is killed every
      request is still answered by the other.

Every process started here runs in its own process group and is killed (SIGKILL to the group) on
exit, failure, timeout or signal; every HTTP call has a timeout; the whole run has a deadline
(--deadline seconds, SIGALRM). A failure is an exit status 1 with a message, never a hang.
"""
import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

GROUPS = []  # process-group ids to kill on the way out


def kill_all():
    while GROUPS:
        pgid = GROUPS.pop()
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(args, log):
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    GROUPS.append(process.pid)
    return process


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if process.pid in GROUPS:
        GROUPS.remove(process.pid)
    process.wait(timeout=10)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    kill_all()
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_healthy(base, process, log_path, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            fail(f"{base}: the server exited ({process.returncode}): {open(log_path).read()[-2000:]}")
        try:
            if http("GET", base + "/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    fail(f"{base} did not become healthy within {seconds} s")


def serve(options, model, port, alias, scratch, parallel=1):
    log_path = os.path.join(scratch, f"{alias}.log")
    log = open(log_path, "w")
    process = start([options.swiftlet, "serve", "-m", model, "--port", str(port), "--parallel", str(parallel),
                     "--ctx-size", str(512 * parallel), "--alias", alias, "-t", "1"], log)
    wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
    return process


# MARK: - Chromium


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None, timeout=30):
        status, data = http(method, self.base + path, body, timeout)
        value = json.loads(data or b"{}").get("value")
        if status != 200:
            fail(f"webdriver {method} {path}: {status} {str(value)[:300]}")
        return value

    def start(self):
        for _ in range(150):
            try:
                if self.call("GET", "/status", timeout=2).get("ready"):
                    break
            except OSError:
                time.sleep(0.1)
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium",
                                   "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                            "--window-size=900,700"]}}}}
        self.session = self.call("POST", "/session", capabilities, timeout=60)["sessionId"]

    def path(self, suffix=""):
        return f"/session/{self.session}{suffix}"

    def run(self, script):
        return self.call("POST", self.path("/execute/sync"), {"script": script, "args": []})

    def element(self, element_id):
        value = self.call("POST", self.path("/element"), {"using": "css selector", "value": "#" + element_id})
        return next(iter(value.values()))

    def type(self, element_id, text):
        element = self.element(element_id)
        self.call("POST", self.path(f"/element/{element}/clear"), {})
        self.call("POST", self.path(f"/element/{element}/value"), {"text": text})

    def click(self, element_id):
        self.call("POST", self.path(f"/element/{self.element(element_id)}/click"), {})

    def wait_for(self, script, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.run(script)
            if value is not None:
                return value
            time.sleep(0.05)
        fail(f"timed out after {seconds} s waiting for {what}")


def browser(options):
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(path):
            fail(f"{path} is missing (scripts/install-deps.sh installs chromium and chromium-driver)")
    scratch = tempfile.mkdtemp(prefix="swiftlet-browser-")
    port = free_port()
    serve(options, options.model, port, "chat", scratch)
    base = f"http://127.0.0.1:{port}"
    question = "What is the capital of France?"
    status, data = http("POST", base + "/v1/chat/completions", {
        "messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": 24}, timeout=60)
    if status != 200:
        fail(f"chat completion: {status} {data[:300]}")
    expected = json.loads(data)["choices"][0]["message"]["content"]

    driver_port = free_port()
    start(["/usr/bin/chromedriver", f"--port={driver_port}", "--allowed-ips=127.0.0.1"],
          open(os.path.join(scratch, "chromedriver.log"), "w"))
    web = WebDriver(driver_port)
    web.start()
    try:
        web.call("POST", web.path("/url"), {"url": base + "/"})
        web.type("temperature", "0")
        web.type("max-tokens", "24")
        web.type("input", question)
        web.click("send")
        # The reply streams into the page: first some text while it is still generating...
        web.wait_for("const r = document.querySelector('.assistant'); return r && r.textContent.length > 0 ? true : null;",
                     60, "the first streamed text of the reply")
        reply = web.wait_for("const r = document.querySelector('.assistant'); "
                             "return r && r.dataset.done === 'true' ? r.textContent : null;", 60, "the end of the reply")
        if reply != expected:
            fail(f"the page shows {reply!r}, the API's greedy reply is {expected!r}")
        stats = web.run("return document.getElementById('stats').textContent;")
        if "tokens/s" not in (stats or ""):
            fail(f"no tokens/s in the stats line: {stats!r}")
        if options.screenshot:
            import base64
            with open(options.screenshot, "wb") as f:
                f.write(base64.b64decode(web.call("GET", web.path("/screenshot"))))
        # A long reply, stopped with the Stop button while it streams.
        web.type("max-tokens", "400")
        web.type("temperature", "1.0")
        web.type("input", "Write a long story about a dragon who learns to bake bread.")
        web.click("send")
        web.wait_for("const r = document.querySelectorAll('.assistant')[1]; return r && r.textContent.length > 20 ? true : null;",
                     60, "the second reply to stream")
        web.click("stop")
        stopped = web.wait_for("const r = document.querySelectorAll('.assistant')[1]; "
                               "return r && r.dataset.done === 'true' ? (r.dataset.stopped || 'no') : null;", 15, "the stop")
        if stopped != "true":
            fail(f"the second reply ended without being stopped ({stopped})")
        if web.run("return document.body.dataset.state;") != "idle":
            fail("the page is not idle after Stop")
        if http("GET", base + "/health", timeout=5)[0] != 200:
            fail("the server is not healthy after the browser session")
    finally:
        try:
            web.call("DELETE", web.path(), timeout=10)
        except Exception:
            pass
    print(f"browser: reply {reply!r} streamed into the page, equal to the API's; Stop ended a long reply")


# MARK: - nginx


def nginx(options):
    binary = next((p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.path.exists(p)), None)
    if binary is None:
        fail("nginx is missing (scripts/install-deps.sh installs it)")
    scratch = tempfile.mkdtemp(prefix="swiftlet-nginx-")
    ports = [free_port(), free_port()]
    replicas = [serve(options, options.model, port, f"replica{i}", scratch) for i, port in enumerate(ports)]
    site = open(options.config).read()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;\n" for p in ports)
    listen = free_port()
    site = site.replace("    server 127.0.0.1:8081 max_fails=1 fail_timeout=10s;\n"
                        "    server 127.0.0.1:8082 max_fails=1 fail_timeout=10s;\n", servers)
    site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen};")
    if servers not in site or f"127.0.0.1:{listen};" not in site:
        fail(f"{options.config} no longer has the upstream and listen lines this test fills in")
    temp = {name: os.path.join(scratch, name) for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    config = "\n".join([
        "daemon off;", "master_process off;", "worker_processes 1;", f"pid {scratch}/nginx.pid;",
        f"error_log {scratch}/error.log;", "events { worker_connections 256; }", "http {", "    access_log off;",
        *(f"    {name}_temp_path {path};" for name, path in
          [("client_body", temp["body"]), ("proxy", temp["proxy"]), ("fastcgi", temp["fastcgi"]),
           ("uwsgi", temp["uwsgi"]), ("scgi", temp["scgi"])]),
        site, "}", ""])
    config_path = os.path.join(scratch, "nginx.conf")
    open(config_path, "w").write(config)
    proxy = start([binary, "-c", config_path, "-p", scratch, "-e", os.path.join(scratch, "error.log")],
                  open(os.path.join(scratch, "nginx.log"), "w"))
    base = f"http://127.0.0.1:{listen}"
    wait_healthy(base, proxy, os.path.join(scratch, "error.log"), seconds=20)

    def complete():
        status, data = http("POST", base + "/v1/completions",
                            {"prompt": "1, 2, 3,", "temperature": 0, "max_tokens": 2}, timeout=60)
        if status != 200:
            fail(f"completion through nginx: {status} {data[:300]}")
        return json.loads(data)["model"]

    served = {}
    for _ in range(8):
        model = complete()
        served[model] = served.get(model, 0) + 1
    if set(served) != {"replica0", "replica1"}:
        fail(f"nginx did not spread the requests over both replicas: {served}")

    # A streamed reply arrives as several server-sent events through the proxy.
    request = urllib.request.Request(base + "/v1/completions", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"prompt": "Once upon a time", "temperature": 0, "max_tokens": 8,
                                                      "stream": True}).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        events = [line for line in response.read().decode().split("\n") if line.startswith("data: ")]
    if len(events) < 3 or events[-1] != "data: [DONE]":
        fail(f"the streamed reply through nginx has {len(events)} events: {events[:3]}")

    stop(replicas[0])
    after = {}
    for _ in range(6):
        model = complete()
        after[model] = after.get(model, 0) + 1
    if after != {"replica1": 6}:
        fail(f"after replica0 was killed, the requests went to {after}")
    print(f"nginx: spread {served}, {len(events)} streamed events, after killing replica0 {after}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["browser", "nginx"])
    parser.add_argument("--swiftlet", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--screenshot")
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "docs", "nginx", "swiftlet.conf"))
    parser.add_argument("--deadline", type=int, default=240, help="seconds before the whole check fails")
    options = parser.parse_args()
    atexit.register(kill_all)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _: fail(f"signal {number}"))
    signal.signal(signal.SIGALRM, lambda *_: fail(f"deadline of {options.deadline} s reached"))
    signal.alarm(options.deadline)
    try:
        browser(options) if options.check == "browser" else nginx(options)
    finally:
        kill_all()


if __name__ == "__main__":
    main()
