#!/usr/bin/env python3
"""Records greedy generations of llama.cpp's llama-completion under each GBNF grammar.

Usage: make-grammar-fixtures.py [-n N_PREDICT] LLAMA_BIN_DIR MODEL.gguf MODEL_NAME [GRAMMAR ...]

For every grammar in Tests/Fixtures/grammars/*.gbnf (or those named) it runs
  llama-completion -m MODEL -p PROMPT --grammar-file G --temp 0 -n N -no-cnv -fa off
                   --prompt-cache FILE --prompt-cache-all -v
reads the prompt token ids from the verbose log and the prompt + generated ids from the
prompt-cache file (llama.cpp's session format: magic, version, count, int32 ids), and writes
Tests/Fixtures/grammars/MODEL_NAME/GRAMMAR.json. The binary is the caller's; this script
neither builds nor downloads anything.
"""
import json, os, re, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "Fixtures", "grammars")
N_PREDICT = 48
PROMPTS = {
    "arithmetic": "Some arithmetic exercises:\n",
    "c": "A short C program:\n",
    "chess": "The moves of a chess game:\n",
    "english": "A sentence in English:",
    "japanese": "日本語の文:",
    "json": "A JSON object describing a person:",
    "json_arr": "A JSON array of three books:",
    "list": "A list of fruits:",
}

def run(bin_dir, model, model_name, grammar, n_predict=N_PREDICT):
    gfile = os.path.join(FIXTURES, grammar + ".gbnf")
    prompt = PROMPTS[grammar]
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "session.bin")
        cmd = [os.path.join(bin_dir, "llama-completion"), "-m", model, "-p", prompt, "--grammar-file", gfile,
               "--temp", "0", "-n", str(n_predict), "-no-cnv", "-fa", "off", "--no-warmup", "-t", "1",
               "--prompt-cache", cache, "--prompt-cache-all", "-v"]
        out = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if out.returncode != 0:
            sys.exit(f"{grammar}: llama-completion failed ({out.returncode}):\n{out.stderr[-2000:]}")
        start = out.stderr.index("D tokens: [") + len("D tokens: [")
        end = out.stderr.index("sampler seed", start)
        prompt_ids = [int(x) for x in re.findall(r"'(?:.|\n)*?':(\d+)(?=, | \])", out.stderr[start:end])]
        eog = [int(x) for x in re.findall(r"I load:   - (\d+) \(", out.stderr)]
        data = open(cache, "rb").read()
        magic, version, count = struct.unpack("<III", data[:12])
        assert magic == 0x6767736E, hex(magic)
        ids = list(struct.unpack(f"<{count}i", data[12:12 + 4 * count]))
    assert ids[:len(prompt_ids)] == prompt_ids, (ids[:len(prompt_ids)], prompt_ids)
    generated = ids[len(prompt_ids):]
    while generated and generated[-1] in eog:
        generated.pop()
    text = out.stdout[len(prompt):] if out.stdout.startswith(prompt) else out.stdout
    text = text.split(" [end of text]")[0].split("\nllama_completion: saving")[0]
    record = {"grammar": grammar + ".gbnf", "prompt": prompt, "n_predict": n_predict,
              "prompt_ids": prompt_ids, "generated_ids": generated, "text": text}
    os.makedirs(os.path.join(FIXTURES, model_name), exist_ok=True)
    with open(os.path.join(FIXTURES, model_name, grammar + ".json"), "w") as f:
        json.dump(record, f, ensure_ascii=False, indent=1)
    print(f"{model_name}/{grammar}: {len(generated)} tokens: {record['text']!r}", flush=True)

if __name__ == "__main__":
    args = sys.argv[1:]
    n_predict = N_PREDICT
    if args[:1] == ["-n"]:
        n_predict, args = int(args[1]), args[2:]
    bin_dir, model, model_name = args[:3]
    for g in args[3:] or sorted(PROMPTS):
        run(bin_dir, model, model_name, g, n_predict)
