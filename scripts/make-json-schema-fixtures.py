#!/usr/bin/env python3
"""Generates and validates the JSON Schema suite's outputs.

Usage: make-json-schema-fixtures.py SWIFTLET_BINARY MODEL.gguf

For each schema in Tests/Fixtures/json-schemas/schemas.json it runs
  swiftlet generate -m MODEL -p PROMPT --json-schema-file SCHEMA --temp 0 -n 256 --output-format json
parses the output with Python's json module, validates it with the `jsonschema` package
(Draft 2020-12, formats checked by the regexes below) and writes outputs.json beside the
schemas. It fails when any output does not parse or validate: the committed outputs are all
valid, and the Swift test checks that generation still produces exactly them.
"""
import json, os, re, subprocess, sys, tempfile
import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "Tests", "Fixtures", "json-schemas")
N_PREDICT = 256
FORMATS = {
    "date": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
    "time": r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    "date-time": r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
}
checker = jsonschema.FormatChecker(formats=())
for name, pattern in FORMATS.items():
    checker.checks(name)(lambda value, p=pattern: not isinstance(value, str) or re.match(p, value) is not None)

def main(binary, model):
    schemas = json.load(open(os.path.join(DIR, "schemas.json")))
    outputs, failures = [], 0
    for case in schemas:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(case["schema"], f)
        out = subprocess.run([binary, "generate", "-m", model, "-p", case["prompt"], "--json-schema-file", f.name,
                              "--temp", "0", "-n", str(N_PREDICT), "--output-format", "json"],
                             capture_output=True, text=True)
        os.unlink(f.name)
        if out.returncode != 0:
            sys.exit(f"{case['name']}: swiftlet failed: {out.stderr}")
        result = json.loads(out.stdout)
        text = result["text"]
        try:
            value = json.loads(text)
            jsonschema.validate(value, case["schema"], cls=jsonschema.Draft202012Validator, format_checker=checker)
            valid = True
        except Exception as e:
            valid = False
            failures += 1
            print(f"INVALID {case['name']}: {e}", file=sys.stderr)
        outputs.append({"name": case["name"], "text": text, "generated_ids": result["generated_ids"],
                        "stop_reason": result["stats"]["stop_reason"], "valid": valid})
        print(f"{case['name']}: {'valid' if valid else 'INVALID'} {text!r}", flush=True)
    json.dump(outputs, open(os.path.join(DIR, "outputs.json"), "w"), ensure_ascii=False, indent=1)
    print(f"{len(outputs) - failures}/{len(outputs)} valid")
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main(*sys.argv[1:3])
