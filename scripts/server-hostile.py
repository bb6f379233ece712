#!/usr/bin/env python3
"""Hostile requests against `swiftlet serve` on loopback: malformed JSON, wrong types, huge
numbers, huge bodies, invalid UTF-8, HTTP garbage, slow-loris headers, hang-ups mid-request and
mid-stream. Every request must get a 4xx with OpenAI's error JSON, or a clean close; afterwards the
server must be healthy, answer a greedy request exactly as before, and its RSS (with --pid) must
not have grown by 32 MiB or more. Prints one JSON line; exits non-zero on any violation.

    scripts/server-hostile.py --port 8080 --pid $(pgrep -n swiftlet)          # full suite (300+)
    scripts/server-hostile.py --port 8080 --quick                             # CI size
"""
import argparse
import json
import random
import socket
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--api-key")
parser.add_argument("--pid", type=int)
parser.add_argument("--quick", action="store_true")
parser.add_argument("--header-timeout", type=float, default=30, help="the server's --timeout")
parser.add_argument("--body-limit", type=int, default=4 << 20, help="the server's --max-body")
parser.add_argument("--seed", type=int, default=17)
args = parser.parse_args()
HOST = "127.0.0.1"
rng = random.Random(args.seed)
AUTH = f"Authorization: Bearer {args.api_key}\r\n" if args.api_key else ""


def rss():
    if not args.pid:
        return None
    with open(f"/proc/{args.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def http_request(path, body, method="POST", extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{AUTH}Content-Type: application/json\r\n" \
           f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    return head.encode() + body


def exchange(raw, timeout):
    """Sends raw bytes, reads until close; returns (status or None, body bytes)."""
    with socket.create_connection((HOST, args.port), timeout=timeout) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass  # the server may close early (a body over the limit): read its answer anyway
        data = b""
        try:
            while len(data) < (1 << 20):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        return -1, data
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return status, body


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line, 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def is_error_json(body):
    try:
        error = json.loads(body)["error"]
        return isinstance(error["message"], str) and isinstance(error["type"], str) and "code" in error
    except (ValueError, KeyError, TypeError):
        return False


cases = []  # (name, kind, payload)


def add(name, raw, kind="full"):
    cases.append((name, kind, raw))


VALID_CHAT = {"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 4, "temperature": 0}
ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize", "/detokenize"]

# 1. Malformed JSON: truncations and byte damage of a valid body, on every endpoint.
text = json.dumps(VALID_CHAT).encode()
for cut in range(1, len(text), max(1, len(text) // (10 if args.quick else 30))):
    add(f"truncated@{cut}", http_request(rng.choice(ENDPOINTS), text[:cut]))
for i in range(8 if args.quick else 40):
    damaged = bytearray(text)
    damaged[rng.randrange(len(damaged))] = rng.choice(b"{}[],:\"\\ x0")
    damaged = bytes(damaged)
    try:
        json.loads(damaged)
        continue  # still valid JSON: not a malformed case
    except ValueError:
        pass
    add(f"damaged{i}", http_request(rng.choice(ENDPOINTS), damaged))
for raw in [b"", b"null", b"[]", b"42", b"\"x\"", b"{", b"}", b"{\"messages\":}", b"{'messages': []}", b"{\"a\":1,}",
            b"\xef\xbb\xbf{}", b"{\"messages\": [] /* comment */}", b"NaN", b"{\"temperature\": NaN}"]:
    for endpoint in ENDPOINTS[:2] if args.quick else ENDPOINTS:
        add(f"bad-json {raw[:12]!r} {endpoint}", http_request(endpoint, raw))

# 2. Wrong types and values out of range, field by field (each value is invalid for its field).
INVALID = {
    "messages": ["x", 1, {}, [1], [{"role": 1, "content": "x"}], [{"role": "user"}], [{"content": "x"}],
                 [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "image_url"}]}], []],
    "temperature": ["hot", True, [], {}, -1, 2.5, 1e308],
    "top_p": ["x", 1.5, -0.1, False], "top_k": [-1, 1.5, "x", 10**30], "min_p": [2, "x", -1],
    "max_tokens": [0, -5, 1.5, "10", 10**30, 1e300, True], "max_completion_tokens": [0, "x"],
    "stop": [1, [1, 2], ["a", "b", "c", "d", "e"], {}],
    "seed": ["x", 1.5, 1e300, True], "presence_penalty": [3, "x"], "frequency_penalty": [-3, []],
    "stream": ["yes", 1], "logprobs": ["yes", 3], "top_logprobs": [21, -1, "x"],
    "logit_bias": ["x", {"a": 1}, {"-1": 1}, {"1": 1000}, {"1": "x"}, [1]],
    "response_format": ["json", {"type": "xml"}, {"type": "json_schema"}, {"type": "json_schema", "json_schema": {}},
                        {"type": "json_schema", "json_schema": {"schema": {"type": "nonsense"}}}],
    "n": [2, 0, "x"], "model": [1, "gpt-4o"], "stream_options": ["x", {"bogus": 1}],
    "unknown_field": [1],
}
for field, values in INVALID.items():
    for value in values[:2] if args.quick else values:
        body = dict(VALID_CHAT)
        body[field] = value
        add(f"type {field}={str(value)[:20]}", http_request("/v1/chat/completions", json.dumps(body).encode()))
for body in [{"prompt": 5}, {"prompt": [[1]]}, {"prompt": [1, -1]}, {"prompt": ""}, {"prompt": "x", "echo": True},
             {"prompt": "x", "best_of": 3}, {"prompt": "x", "suffix": "y"}, {}]:
    add(f"completion {str(body)[:30]}", http_request("/v1/completions", json.dumps(body).encode()))
for body in [{"input": 5}, {"input": []}, {"input": [1, 2]}, {"input": "x", "model": "nope"},
             {"input": "x", "encoding_format": "hex"}, {"input": "x", "dimensions": 3}, {}]:
    add(f"embedding {str(body)[:30]}", http_request("/v1/embeddings", json.dumps(body).encode()))
for body in [{"content": 5}, {}, {"content": "x", "add_special": "yes"}]:
    add(f"tokenize {body}", http_request("/tokenize", json.dumps(body).encode()))
for body in [{"tokens": "x"}, {"tokens": [1e30]}, {"tokens": [-1]}, {"tokens": [10**12]}, {}]:
    add(f"detokenize {body}", http_request("/detokenize", json.dumps(body).encode()))

# 3. Huge numbers written out in full.
for literal in ["1" + "0" * 400, "-" + "9" * 500, "1e999999", "0." + "0" * 1000 + "1e99999", "123456789012345678901234567890"]:
    for field in ["max_tokens", "temperature", "seed", "top_k"]:
        raw = b'{"messages":[{"role":"user","content":"hi"}],"' + field.encode() + b'":' + literal.encode() + b"}"
        add(f"huge {field}", http_request("/v1/chat/completions", raw))

# 4. Huge bodies: over the limit (declared, and sent), deep nesting, a prompt beyond the context.
add("declared-over-limit", f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {args.body_limit + 1}\r\n\r\n".encode() + b"{" * 1000)
add("sent-over-limit", http_request("/v1/chat/completions", b" " * (args.body_limit + 10)))
chunked = b"".join(b"%x\r\n%s\r\n" % (65536, b" " * 65536) for _ in range(args.body_limit // 65536 + 2)) + b"0\r\n\r\n"
add("chunked-over-limit", f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode() + chunked)
for depth in [100, 10000, 100000]:
    add(f"nesting {depth}", http_request("/v1/chat/completions", b"[" * depth + b"]" * depth))
    add(f"object nesting {depth}", http_request("/v1/completions", b'{"prompt":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"))
add("long-prompt", http_request("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "word " * 60000}]}).encode()))
add("many-messages", http_request("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "x"}] * 20000}).encode()))
add("many-logit-bias", http_request("/v1/chat/completions", json.dumps({**VALID_CHAT, "logit_bias": {str(i): 1 for i in range(5000)}}).encode()))
add("many-embedding-inputs", http_request("/v1/embeddings", json.dumps({"input": ["x"] * 5000}).encode()))

# 5. Invalid UTF-8 inside otherwise valid JSON.
for bad in [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf5\x80\x80\x80", b"\xe2\x82", b"\xc3\x28", b"\xf0\x9f\x98"]:
    for endpoint, prefix, suffix in [("/v1/chat/completions", b'{"messages":[{"role":"user","content":"a', b'"}]}'),
                                     ("/v1/completions", b'{"prompt":"a', b'"}'), ("/tokenize", b'{"content":"', b'"}'),
                                     ("/v1/embeddings", b'{"input":"', b'"}')]:
        add(f"utf8 {bad!r} {endpoint}", http_request(endpoint, prefix + bad + suffix))

# 6. HTTP garbage and wrong methods / paths.
for raw in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nNoColonHere\r\n\r\n",
            b"POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n",
            b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n"]:
    add(f"http garbage {raw[:16]!r}", raw)
for method, path in [("GET", "/v1/chat/completions"), ("DELETE", "/v1/models"), ("PUT", "/tokenize"), ("GET", "/nope"),
                     ("POST", "/v1/../etc/passwd"), ("GET", "/%00"), ("POST", "/v1/models")]:
    add(f"route {method} {path}", http_request(path, b"{}", method=method))
if args.api_key:
    for header in ["", "Authorization: Bearer wrong\r\n", "Authorization: Basic eDp5\r\n", "Authorization: Bearer\r\n"]:
        raw = (f"GET /v1/models HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n").encode()
        add(f"auth {header.strip()[:20]}", raw, kind="auth")

# 7. Hang-ups: mid-body, and mid-stream.
for i in range(4 if args.quick else 20):
    body = json.dumps({**VALID_CHAT, "max_tokens": 64}).encode()
    add(f"hangup mid-body {i}", http_request("/v1/chat/completions", body)[: rng.randrange(20, 150)], kind="hangup")
for i in range(2 if args.quick else 8):
    body = json.dumps({**VALID_CHAT, "max_tokens": 200, "temperature": 0.8, "stream": True}).encode()
    add(f"hangup mid-stream {i}", http_request("/v1/chat/completions", body), kind="hangup-stream")

# 8. Slow-loris: headers a byte at a time.
slowloris = 2 if args.quick else 6


def run_case(name, kind, raw):
    timeout = args.header_timeout + 15
    if kind == "hangup":
        with socket.create_connection((HOST, args.port), timeout=timeout) as s:
            s.sendall(raw)
        return None
    if kind == "hangup-stream":
        with socket.create_connection((HOST, args.port), timeout=timeout) as s:
            s.sendall(raw)
            got = b""
            while got.count(b"data: ") < 3:
                chunk = s.recv(4096)
                if not chunk:
                    return f"{name}: stream closed before any token"
                got += chunk
        return None
    try:
        status, body = exchange(raw, timeout)
    except socket.timeout:
        return f"{name}: no answer and no close within {timeout}s"
    if status is None:
        return None  # closed cleanly without an answer (HTTP garbage)
    if kind == "auth":
        return None if status == 401 and is_error_json(body) else f"{name}: {status} {body[:120]!r}"
    if not 400 <= status < 500:
        return f"{name}: status {status} {body[:160]!r}"
    if not is_error_json(body) and not (name.startswith("http garbage") and status == 400 and not body):
        # (Requests the HTTP parser cannot read never reach the API: a bare 400, then close.)
        return f"{name}: {status} without OpenAI error JSON: {body[:160]!r}"
    return None


def slow_client(results, index):
    start = time.monotonic()
    try:
        with socket.create_connection((HOST, args.port), timeout=args.header_timeout + 20) as s:
            s.settimeout(1)
            header = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "
            i = 0
            while time.monotonic() - start < args.header_timeout + 15:
                try:
                    s.sendall(header[i % len(header):i % len(header) + 1] or b"a")
                except OSError:
                    results[index] = time.monotonic() - start
                    return
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        results[index] = time.monotonic() - start
                        return
                except socket.timeout:
                    pass
                except OSError:
                    results[index] = time.monotonic() - start
                    return
                i += 1
    except OSError:
        results[index] = time.monotonic() - start
        return


def greedy():
    status, body = exchange(http_request("/v1/completions", json.dumps(
        {"prompt": "The three primary colors are", "temperature": 0, "max_tokens": 16}).encode()), 120)
    return status, json.loads(body)["choices"][0]["text"] if status == 200 else body


before_status, before_text = greedy()
rss_before = rss()
slow_results = [None] * slowloris
slow_threads = [threading.Thread(target=slow_client, args=(slow_results, i)) for i in range(slowloris)]
for t in slow_threads:
    t.start()
violations = []
for name, kind, raw in cases:
    problem = run_case(name, kind, raw)
    if problem:
        violations.append(problem)
for t in slow_threads:
    t.join()
for i, closed_after in enumerate(slow_results):
    if closed_after is None:
        violations.append(f"slow-loris {i}: connection still open after {args.header_timeout + 15}s")
time.sleep(1)
after_status, after_text = greedy()
_, health = exchange(f"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(), 10)
rss_after = rss()
if before_status != 200 or after_status != 200 or before_text != after_text:
    violations.append(f"greedy answer changed: {before_text!r} -> {after_text!r}")
if b'"ok"' not in health:
    violations.append(f"unhealthy afterwards: {health[:100]!r}")
growth = (rss_after - rss_before) if rss_before and rss_after else None
if growth is not None and growth >= 32 << 20:
    violations.append(f"RSS grew by {growth / 2**20:.1f} MiB")
print(json.dumps({"requests": len(cases) + slowloris, "violations": violations[:20], "violation_count": len(violations),
                  "rss_before_mib": rss_before and round(rss_before / 2**20, 1),
                  "rss_after_mib": rss_after and round(rss_after / 2**20, 1),
                  "slowloris_closed_after_s": [r and round(r, 1) for r in slow_results]}))
raise SystemExit(1 if violations else 0)
