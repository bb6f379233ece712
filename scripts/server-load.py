#!/usr/bin/env python3
"""Bounded load test of an OpenAI-compatible server on loopback (swiftlet serve or llama-server).

N clients stream chat completions back to back for a fixed time; prints one JSON line with the
requests done and failed (429s are counted apart and retried after Retry-After), time to first
token p50/p99, aggregate generated tokens per second and the server's peak RSS (with --pid).

    scripts/server-load.py --port 8080 --clients 16 --seconds 60 --pid $(pgrep -n swiftlet)
"""
import argparse
import http.client
import json
import statistics
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8080)
parser.add_argument("--clients", type=int, default=16)
parser.add_argument("--seconds", type=float, default=60)
parser.add_argument("--max-tokens", type=int, default=96)
parser.add_argument("--api-key")
parser.add_argument("--pid", type=int, help="server process whose RSS to sample")
parser.add_argument("--label", default="")
args = parser.parse_args()
if args.host not in ("127.0.0.1", "localhost", "::1"):
    raise SystemExit("loopback only")
args.seconds = min(args.seconds, 600)  # bounded whatever is asked

TOPICS = ["the sea", "mountains", "a robot", "coffee", "the moon", "a library", "rain", "a bicycle",
          "trains", "bread", "winter", "a garden", "music", "the desert", "a lighthouse", "chess"]

lock = threading.Lock()
results = {"ok": 0, "failed": 0, "rejected_429": 0, "tokens": 0, "ttft": [], "errors": []}
peak_rss = [0]
deadline = time.monotonic() + args.seconds
start = time.monotonic()


def one_request(client_index, n):
    body = json.dumps({
        "messages": [{"role": "user", "content": f"Write a short poem about {TOPICS[(client_index + n) % len(TOPICS)]}."}],
        "max_tokens": args.max_tokens, "temperature": 0.8, "stream": True,
        "stream_options": {"include_usage": True},
    })
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    connection = http.client.HTTPConnection(args.host, args.port, timeout=120)
    sent = time.monotonic()
    try:
        connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = connection.getresponse()
        if response.status == 429:
            retry = float(response.getheader("Retry-After") or "1")
            response.read()
            with lock:
                results["rejected_429"] += 1
            time.sleep(min(retry, 2) * 0.1)
            return
        if response.status != 200:
            with lock:
                results["failed"] += 1
                results["errors"].append(f"{response.status} {response.read()[:200]!r}")
            return
        first = None
        events = 0
        usage = None
        buffer = b""
        done = False
        while not done:
            line = response.readline()
            if not line:
                break
            buffer = line.strip()
            if not buffer.startswith(b"data: "):
                continue
            data = buffer[6:]
            if data == b"[DONE]":
                done = True
                break
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(str(event["error"]))
            if event.get("usage"):
                usage = event["usage"].get("completion_tokens")
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    events += 1
                    if first is None:
                        first = time.monotonic()
        if not done:
            raise RuntimeError("stream ended without [DONE]")
        with lock:
            results["ok"] += 1
            results["tokens"] += usage if usage is not None else events
            if first is not None:
                results["ttft"].append(first - sent)
    except Exception as error:  # noqa: BLE001 - every failure is counted and reported
        with lock:
            results["failed"] += 1
            results["errors"].append(repr(error)[:200])
    finally:
        connection.close()


def client(index):
    n = 0
    while time.monotonic() < deadline:
        one_request(index, n)
        n += 1


def sample_rss():
    while time.monotonic() < deadline + 5:
        try:
            with open(f"/proc/{args.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        peak_rss[0] = max(peak_rss[0], int(line.split()[1]) * 1024)
        except OSError:
            return
        time.sleep(0.25)


threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
if args.pid:
    threading.Thread(target=sample_rss, daemon=True).start()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
ttft = sorted(results["ttft"])


def percentile(values, p):
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


print(json.dumps({
    "label": args.label, "clients": args.clients, "seconds": round(elapsed, 1),
    "requests_ok": results["ok"], "requests_failed": results["failed"], "rejected_429": results["rejected_429"],
    "generated_tokens": results["tokens"], "tokens_per_second": round(results["tokens"] / elapsed, 2),
    "ttft_p50_ms": round(percentile(ttft, 50) * 1000, 1) if ttft else None,
    "ttft_p99_ms": round(percentile(ttft, 99) * 1000, 1) if ttft else None,
    "ttft_mean_ms": round(statistics.mean(ttft) * 1000, 1) if ttft else None,
    "peak_rss_mib": round(peak_rss[0] / 2**20, 1) if args.pid else None,
    "errors": results["errors"][:5],
}))
