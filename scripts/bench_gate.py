#!/usr/bin/env python3
"""Verdicts, history and report of the performance-regression gate (driven by scripts/bench-gate.sh).

  instructions  read callgrind's per-region dumps, compare with the baseline, print the verdict table
  wallclock     alternate baseline / candidate runs with same-run references; Hodges-Lehmann ratio
                and Wilcoxon interval, more rounds while a verdict is open
  report        render the JSON-lines history as an HTML page of SVG trend charts + a markdown summary

Standard library only: CI machines need nothing beyond python3.
"""
import argparse
import datetime
import glob
import html
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time


# MARK: - Run metadata

def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""


def run_metadata(path):
    commit = git("rev-parse", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    features = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile") if f in flags]
    return {
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{socket.gethostname()} ({cpu}, {os.cpu_count()} cores)",
        "cpu_features": features,
        "path": path,
    }


def append_history(history, records):
    with open(history, "a") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")


# MARK: - Deterministic gate

def callgrind_totals(run_dir, group):
    """(workload names, kernel path, instruction counts) of one group's callgrind run."""
    names, path = [], ""
    for line in open(os.path.join(run_dir, f"{group}.out")):
        if line.startswith("workload "):
            names.append(line[len("workload "):].rstrip("\n"))
        elif line.startswith("path "):
            path = line[len("path "):].strip()
    dumps = []
    for f in glob.glob(os.path.join(run_dir, f"{group}.cg.*.*")):
        m = re.search(r"\.cg\.\d+\.(\d+)$", f)
        if m:
            dumps.append((int(m.group(1)), f))
    counts = []
    for _, f in sorted(dumps):
        total = None
        for line in open(f):
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
        counts.append(total)
    if len(counts) != len(names) or None in counts or 0 in counts:
        sys.exit(f"bench-gate: group {group}: {len(names)} workloads but {len(counts)} callgrind dumps")
    return names, path, counts


def fmt_count(n):
    return f"{n / 1e6:,.3f} M"


def instructions(args):
    groups = args.groups.split()
    current, paths = {}, set()
    for g in groups:
        names, path, counts = callgrind_totals(args.run, g)
        paths.add(path)
        for n, c in zip(names, counts):
            current[n] = {"group": g, "instructions": c}
    path = " | ".join(sorted(paths))
    try:
        baseline = json.load(open(args.baseline))
    except FileNotFoundError:
        baseline = {"workloads": {}}
    base = baseline.get("workloads", {})
    threshold = args.threshold

    rows, failures, improved = [], [], []
    for name in sorted(set(base) | set(current), key=lambda n: (current.get(n, base.get(n))["group"], n)):
        b, c = base.get(name), current.get(name)
        if c is None:
            if args.partial and b["group"] not in groups:
                continue
            rows.append((name, fmt_count(b["instructions"]), "—", "—", "MISSING"))
            failures.append(f"{name} did not run")
            continue
        if b is None:
            rows.append((name, "—", fmt_count(c["instructions"]), "—", "new"))
            continue
        delta = 100.0 * (c["instructions"] - b["instructions"]) / b["instructions"]
        if delta > threshold:
            verdict = "REGRESSION"
            failures.append(f"{name} +{delta:.2f}%")
        elif delta < -threshold:
            verdict = "improved"
            improved.append(name)
        else:
            verdict = "ok"
        rows.append((name, fmt_count(b["instructions"]), fmt_count(c["instructions"]), f"{delta:+.3f}", verdict))

    print(f"\nbench-gate (instructions, callgrind, 1 thread; kernel path under valgrind: {path}); threshold {threshold:g} %\n")
    print("| workload | baseline | current | Δ % | verdict |")
    print("| --- | ---: | ---: | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()

    meta = run_metadata(path)
    records = []
    for name, c in current.items():
        b = base.get(name)
        delta = None if b is None else 100.0 * (c["instructions"] - b["instructions"]) / b["instructions"]
        verdict = "new" if b is None else ("regression" if delta > threshold else "improved" if delta < -threshold else "ok")
        records.append({**meta, "gate": "instructions", "benchmark": name, "metric": "instructions (callgrind Ir)",
                        "value": c["instructions"], "baseline": b and b["instructions"], "delta_pct": delta,
                        "interval": None, "threshold_pct": threshold, "verdict": verdict,
                        "inject": os.environ.get("SWIFTLET_GATE_INJECT")})
    append_history(args.history, records)

    if args.mode == "update":
        merged = dict(base) if args.partial else {}
        merged.update(current)
        valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
        json.dump({"tool": f"{valgrind} --tool=callgrind, instructions inside swiftlet_gate_measured",
                   "path": path, "commit": meta["commit"], "date": meta["date"], "workloads": merged},
                  open(args.baseline, "w"), indent=1, sort_keys=True)
        print(f"bench-gate: baseline written to {args.baseline} ({len(merged)} workloads)")
        return 0
    if improved:
        print(f"bench-gate: {len(improved)} workload(s) improved beyond {threshold:g} % "
              f"(refresh the baseline with `scripts/bench-gate.sh update` when intended)")
    if not base:
        print(f"bench-gate: no baseline at {args.baseline}; run `scripts/bench-gate.sh update`")
        return 0
    if failures:
        print("bench-gate: FAILED: " + "; ".join(failures))
        return 1
    print(f"bench-gate: ok ({len(current)} workloads within +{threshold:g} %)")
    return 0


# MARK: - Wall-clock gate

def run_timed(binary, args, clock, inject=False):
    """Fastest of each workload's timed runs (the least disturbed by other work), by `clock`:
    "time" (wall clock) or "cpu" (the thread's CPU time)."""
    env = dict(os.environ)
    if not inject:
        env.pop("SWIFTLET_GATE_INJECT", None)
    out = subprocess.run([binary, *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"bench-gate: {binary} {' '.join(args)} failed:\n{out.stderr}")
    times = {}
    for line in out.stdout.splitlines():
        if line.startswith(clock + " "):
            name, samples = line[len(clock) + 1:].split("\t")
            times[name] = min(int(s) for s in samples.split())
    return times


def llama_bench_ns(llama_bench, model):
    out = subprocess.run([llama_bench, "-m", model, "-p", "32", "-n", "4", "-t", "1", "-r", "2", "-o", "json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return sum(r["avg_ns"] for r in json.loads(out.stdout))


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def normal_quantile(p):
    """Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
         -3.066479806614716e+01, 2.506628277459239e+00]
    b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
         -1.328068155288572e+01]
    c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
         4.374664141464968e+00, 2.938163982698783e+00]
    d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if p > 1 - 0.02425:
        return -normal_quantile(1 - p)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def hodges_lehmann(ratios, confidence):
    """Hodges-Lehmann estimate of the typical ratio (median of the Walsh averages of the log
    ratios) and its Wilcoxon signed-rank confidence interval. Unlike a mean, it is not moved by
    the few rounds a neighbour slowed down one side only, which is what noise looks like here."""
    logs = [math.log(r) for r in ratios]
    n = len(logs)
    walsh = sorted((logs[i] + logs[j]) / 2 for i in range(n) for j in range(i, n))
    m = len(walsh)
    estimate = statistics.median(walsh)
    z = normal_quantile((1 + confidence) / 2)
    k = int(math.floor(n * (n + 1) / 4 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24)))
    k = max(0, min(k, (m - 1) // 2))
    return math.exp(estimate), math.exp(walsh[k]), math.exp(walsh[m - 1 - k])


def verdict_of(lo, hi, threshold):
    if lo > 1 + threshold:
        return "REGRESSION"
    if hi < 1 - threshold:
        return "improved"
    if lo >= 1 - threshold and hi <= 1 + threshold:
        return "ok"
    return "inconclusive"


def wallclock(args):
    groups = args.groups.split()
    model = os.path.join(os.environ["SWIFTLET_MODELS_DIR"], "smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
    clock = "cpu" if args.clock == "cpu" else "time"
    samples = {}  # workload -> list of (baseline ns, candidate ns, baseline ref, candidate ref)
    start = time.time()
    loads = []
    threshold = args.threshold / 100
    max_rounds = max(args.rounds, args.max_rounds or args.rounds)

    def reference():
        # References run from the baseline binary: code the candidate cannot have changed.
        parts = list(run_timed(args.baseline_bin, ["reference", "--repeat", "3"], clock).values())
        if args.llama_bench and clock == "time":
            ns = llama_bench_ns(args.llama_bench, model)
            if ns:
                parts.append(ns)
        return parts

    def undecided():
        # A workload is decided once its interval lies wholly above the regression threshold or
        # wholly at or below it; only the undecided ones can change the exit code.
        for rows in samples.values():
            _, lo, hi = hodges_lehmann([b / a for a, b, _, _ in rows], args.confidence)
            if lo <= 1 + threshold < hi:
                return True
        return False

    rounds = 0
    while rounds < args.rounds or (rounds < max_rounds and undecided()):
        loads.append(os.getloadavg()[0])
        sides = [("baseline", args.baseline_bin), ("candidate", args.candidate_bin)]
        if rounds % 2:
            sides.reverse()
        refs = {side: reference() for side, _ in sides}
        # Each group's pair runs back to back, so a disturbance lasting a few seconds tends to
        # hit both sides of a pair rather than one.
        for g in groups:
            got = {side: run_timed(binary, ["run", g, "--repeat", str(args.repeat)], clock,
                                   inject=side == "candidate") for side, binary in sides}
            for name, base_ns in got["baseline"].items():
                if name in got["candidate"]:
                    samples.setdefault(name, []).append((base_ns, got["candidate"][name],
                                                         refs["baseline"], refs["candidate"]))
        rounds += 1
        print(f"bench-gate: wall-clock round {rounds} ({time.time() - start:.0f} s, load {loads[-1]:.1f})", file=sys.stderr)

    clock_name = "thread CPU time" if clock == "cpu" else "wall clock"
    refs = "normalised by same-run references" if args.normalize else "paired by round (references shown beside)"
    print(f"\nbench-gate ({clock_name}, 1 thread, {rounds} alternating rounds ({args.rounds}–{max_rounds}: more only "
          f"while a verdict is open), fastest of {args.repeat} timed runs per process; baseline {args.base_ref}); "
          f"Hodges–Lehmann ratio candidate/baseline with its {args.confidence * 100:g} % Wilcoxon signed-rank interval, "
          f"{refs}; regression when the interval lies above {1 + threshold:.3f}\n")
    print(f"machine load average during the job: {min(loads):.1f}–{max(loads):.1f} (median {statistics.median(loads):.1f}) "
          f"on {os.cpu_count()} cores\n")
    other = "raw" if args.normalize else "reference-normalised"
    print(f"| workload | baseline ms | candidate ms | ratio | interval | {other} interval | verdict |")
    print("| --- | ---: | ---: | ---: | --- | --- | --- |")
    ref_a = ref_b = None
    failures, records = [], []
    meta = run_metadata(subprocess.run([args.candidate_bin, "path"], capture_output=True, text=True).stdout.strip())
    for name, rows in samples.items():
        if ref_a is None:
            # Reference factor of each side's measurement: the geometric mean of the references
            # taken just before it, each relative to its median over the job, so machine drift
            # between the two sides cancels out of the ratio.
            cols = [s[2] for s in rows] + [s[3] for s in rows]
            medians = [statistics.median(c) for c in zip(*cols)]
            ref_a = [geomean([v / m for v, m in zip(s[2], medians)]) for s in rows]
            ref_b = [geomean([v / m for v, m in zip(s[3], medians)]) for s in rows]
        raw = [b / a for a, b, _, _ in rows]
        norm = [r * fa / fb for r, fa, fb in zip(raw, ref_a, ref_b)]
        value, lo, hi = hodges_lehmann(raw, args.confidence)
        nvalue, nlo, nhi = hodges_lehmann(norm, args.confidence)
        if args.normalize:
            (value, lo, hi), (nlo, nhi) = (nvalue, nlo, nhi), (lo, hi)
        verdict = verdict_of(lo, hi, threshold)
        if verdict == "REGRESSION":
            failures.append(f"{name} ×{value:.3f} [{lo:.3f}, {hi:.3f}]")
        print(f"| {name} | {statistics.median(a for a, *_ in rows) / 1e6:.2f} | {statistics.median(b for _, b, *_ in rows) / 1e6:.2f} "
              f"| {value:.3f} | [{lo:.3f}, {hi:.3f}] | [{nlo:.3f}, {nhi:.3f}] | {verdict} |")
        records.append({**meta, "gate": "wallclock", "benchmark": name, "metric": f"{args.clock} time ratio candidate/baseline",
                        "value": value, "baseline": args.base_ref, "delta_pct": 100 * (value - 1),
                        "interval": [lo, hi], "other_interval": [nlo, nhi], "normalised": args.normalize,
                        "clock": args.clock, "threshold_pct": args.threshold, "estimator": "hodges-lehmann",
                        "verdict": verdict.lower(), "rounds": rounds, "load": [min(loads), max(loads)],
                        "inject": os.environ.get("SWIFTLET_GATE_INJECT")})
    print()
    append_history(args.history, records)
    if failures:
        print("bench-gate: wall clock FAILED: " + "; ".join(failures))
        return 1
    print(f"bench-gate: wall clock ok (no interval above +{args.threshold:g} %)")
    return 0


# MARK: - Report

COLORS = {"regression": "#c62828", "improved": "#2e7d32", "ok": "#1565c0", "new": "#6a1b9a", "inconclusive": "#ef6c00"}


def svg_chart(points, width=400, height=150, ratio=False, threshold_line=None):
    """A trend chart of (label, value, interval, verdict, injected) points, oldest first, with a
    dashed line at the regression threshold when given."""
    pad_l, pad_r, pad_t, pad_b = 64, 12, 12, 28
    values = [p[1] for p in points] + [v for p in points if p[2] for v in p[2]]
    if ratio:
        values += [1.0]
    if threshold_line is not None:
        values += [threshold_line]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(abs(hi), 1):
        lo, hi = lo * 0.995 - 1e-9, hi * 1.005 + 1e-9
    span = hi - lo
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    n = len(points)

    def x(i):
        return pad_l + (width - pad_l - pad_r) * (i / (n - 1) if n > 1 else 0.5)

    def y(v):
        return pad_t + (height - pad_t - pad_b) * (1 - (v - lo) / (hi - lo))

    def label(v):
        return f"{v:.3f}" if ratio else (f"{v / 1e6:.2f} M" if abs(v) >= 1e5 else f"{v:.0f}")

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
           f'<rect x="{pad_l}" y="{pad_t}" width="{width - pad_l - pad_r}" height="{height - pad_t - pad_b}" fill="#fafafa" stroke="#ddd"/>']
    for v in (lo + 0.08 * span * 0 + (hi - lo) * f for f in (0.1, 0.5, 0.9)):
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{pad_l - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end" fill="#555">{label(v)}</text>')
    if ratio:
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(1):.1f}" y2="{y(1):.1f}" stroke="#999" stroke-dasharray="4 3"/>')
    for i, p in enumerate(points):
        if p[2]:
            out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(p[2][0]):.1f}" y2="{y(p[2][1]):.1f}" stroke="#90a4ae" stroke-width="3"/>')
    out.append('<polyline fill="none" stroke="#455a64" stroke-width="1.5" points="' +
               " ".join(f"{x(i):.1f},{y(p[1]):.1f}" for i, p in enumerate(points)) + '"/>')
    if threshold_line is not None:
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(threshold_line):.1f}" y2="{y(threshold_line):.1f}" '
                   f'stroke="#c62828" stroke-dasharray="2 3"><title>regression threshold</title></line>')
    for i, p in enumerate(points):
        # Runs with the test-only injected slowdown get a black ring.
        ring = ' stroke="#000" stroke-width="1.5"' if p[4] else ""
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(p[1]):.1f}" r="3.5" fill="{COLORS.get(p[3], "#455a64")}"{ring}>'
                   f'<title>{html.escape(p[0])}: {label(p[1])} ({p[3]}{", injected slowdown" if p[4] else ""})</title></circle>')
    if n:
        out.append(f'<text x="{pad_l}" y="{height - 8}" font-size="10" fill="#555">{html.escape(points[0][0][:16])}</text>')
        out.append(f'<text x="{width - pad_r}" y="{height - 8}" font-size="10" text-anchor="end" fill="#555">{html.escape(points[-1][0][:16])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def report(args):
    records = [json.loads(line) for line in open(args.history) if line.strip()]
    if not records:
        sys.exit(f"bench-gate: {args.history} is empty")
    os.makedirs(args.out, exist_ok=True)
    series = {}
    for r in records:
        series.setdefault((r["gate"], r["benchmark"]), []).append(r)
    titles = {"instructions": "Deterministic gate: instructions under callgrind (1 thread)",
              "wallclock": "Timed A/B gate: candidate/baseline time ratio with its interval"}
    body = []
    # The timed gate has few charts: first, so a screenshot of the page top shows both gates.
    for gate in ("wallclock", "instructions"):
        keys = [k for k in series if k[0] == gate]
        if not keys:
            continue
        body.append(f"<h2>{titles[gate]}</h2><div class='grid'>")
        for key in sorted(keys, key=lambda k: k[1]):
            runs = series[key]
            last = runs[-1]
            points = [(f"{r['date'][5:16].replace('T', ' ')} {r['commit'][:7]}", r["value"], r.get("interval"), r["verdict"],
                       bool(r.get("inject"))) for r in runs]
            if gate == "wallclock":
                threshold_line = 1 + last["threshold_pct"] / 100
            else:
                threshold_line = last["baseline"] * (1 + last["threshold_pct"] / 100) if last.get("baseline") else None
            delta = "" if last.get("delta_pct") is None else f", Δ {last['delta_pct']:+.2f} %"
            body.append(f"<figure><figcaption><b>{html.escape(key[1])}</b><br><span>{len(runs)} runs; last "
                        f"{last['verdict']}{delta}</span></figcaption>{svg_chart(points, ratio=gate == 'wallclock', threshold_line=threshold_line)}</figure>")
        body.append("</div>")
    last = records[-1]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Swiftlet performance gate</title>
<style>body{{font-family:system-ui,sans-serif;margin:20px;color:#222}} .grid{{display:flex;flex-wrap:wrap;gap:10px}}
figure{{margin:0;border:1px solid #e0e0e0;padding:6px;border-radius:4px}} figcaption{{font-size:12px;max-width:400px}}
figcaption span{{color:#666}} .legend span{{margin-right:14px}}</style></head><body>
<h1>Swiftlet performance gate — history</h1>
<p>{len(records)} records, {len({r['date'] for r in records})} gate runs, last {html.escape(last['date'])} on
{html.escape(last['machine'])}. Kernel paths: {html.escape('; '.join(sorted({f"{r['gate']}: {r['path']}" for r in records})))}.</p>
<p class="legend">{''.join(f'<span style="color:{c}">● {v}</span>' for v, c in COLORS.items())} — ringed: run with the
test-only injected slowdown; grey bars: confidence interval; red dashes: regression threshold</p>
{''.join(body)}
</body></html>"""
    open(os.path.join(args.out, "index.html"), "w").write(page)

    md = ["## Performance gate", ""]
    for gate in ("instructions", "wallclock"):
        runs = [r for r in records if r["gate"] == gate]
        if not runs:
            continue
        latest_date = runs[-1]["date"]
        latest = [r for r in runs if r["date"] == latest_date]
        bad = [r for r in latest if r["verdict"] == "regression"]
        md.append(f"**{titles[gate]}** — {latest_date}, commit `{latest[0]['commit'][:10]}`: "
                  + (f"❌ {len(bad)} regression(s)" if bad else "✅ no regression"))
        md.append("")
        md.append("| benchmark | value | Δ % | interval | verdict | trend |")
        md.append("| --- | ---: | ---: | --- | --- | --- |")
        for r in sorted(latest, key=lambda r: r["benchmark"]):
            hist = [h["value"] for h in series[(gate, r["benchmark"])]][-12:]
            value = f"{r['value']:.3f}" if gate == "wallclock" else f"{r['value']:,}"
            delta = "" if r.get("delta_pct") is None else f"{r['delta_pct']:+.2f}"
            interval = "" if not r.get("interval") else f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]"
            md.append(f"| {r['benchmark']} | {value} | {delta} | {interval} | {r['verdict']} | {sparkline(hist)} |")
        md.append("")
    open(os.path.join(args.out, "summary.md"), "w").write("\n".join(md))
    print(f"bench-gate: wrote {args.out}/index.html and {args.out}/summary.md")
    return 0


def sparkline(values):
    bars = "▁▂▃▄▅▆▇█"
    lo, hi = min(values), max(values)
    if hi == lo:
        return bars[3] * len(values)
    return "".join(bars[min(7, int((v - lo) / (hi - lo) * 8))] for v in values)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("instructions")
    i.add_argument("--run", required=True)
    i.add_argument("--groups", required=True)
    i.add_argument("--baseline", required=True)
    i.add_argument("--threshold", type=float, default=1.0)
    i.add_argument("--history", required=True)
    i.add_argument("--mode", choices=["check", "update"], default="check")
    i.add_argument("--partial", action="store_true", help="only some groups ran: leave the others alone")
    w = sub.add_parser("wallclock")
    w.add_argument("--baseline-bin", required=True)
    w.add_argument("--candidate-bin", required=True)
    w.add_argument("--base-ref", required=True)
    w.add_argument("--groups", default="wall-smollm2 wall-gemma3")
    w.add_argument("--rounds", type=int, default=12, help="rounds always run")
    w.add_argument("--max-rounds", type=int, default=0, help="more rounds, up to this, while a verdict is open")
    w.add_argument("--repeat", type=int, default=3)
    w.add_argument("--threshold", type=float, default=5.0)
    w.add_argument("--confidence", type=float, default=0.95)
    w.add_argument("--history", required=True)
    w.add_argument("--llama-bench")
    w.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                   help="cpu: the thread's CPU time (leaves out waiting for a core on a shared machine)")
    w.add_argument("--normalize", action="store_true", help="divide each side by the references measured just before it")
    r = sub.add_parser("report")
    r.add_argument("--history", required=True)
    r.add_argument("--out", required=True)
    args = p.parse_args()
    return {"instructions": instructions, "wallclock": wallclock, "report": report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
