#!/usr/bin/env python3
"""Builds the fortune-chat instruction set used to demonstrate `swiftlet finetune --chat`.

Source: Debian's `fortunes` / `fortunes-min` packages (/usr/share/games/fortunes; pass another
directory as the first argument). Every fortune that ends in an attribution line ("-- Author")
and is at most 320 characters becomes one conversation, alternately:
  * "Who is this quote attributed to?" + the quote (without its attribution)
    ->  "It is attributed to AUTHOR."  (a knowledge question in a fixed answer format)
  * "Quote the first sentence of this fortune." + the fortune with its attribution
    ->  the first sentence, verbatim  (determined by the prompt: format and copying)
The conversations are shuffled with a fixed seed and written as JSONL ({"messages": [...]}).
Usage: make_fortune_chat.py [FORTUNE_DIR] [OUT.jsonl] [LIMIT]"""
import json, os, random, re, sys

directory = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/games/fortunes"
out = sys.argv[2] if len(sys.argv) > 2 else "fortune-chat.jsonl"
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1200
files = ["fortunes", "literature", "humorists", "wisdom", "people", "politics", "science", "work", "love", "education"]

conversations = []
for name in files:
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        continue
    text = open(path, encoding="utf-8", errors="replace").read()
    for fortune in text.split("\n%\n"):
        fortune = fortune.strip("\n")
        lines = [l.rstrip() for l in fortune.split("\n") if l.strip()]
        if len(lines) < 2 or len(fortune) > 320:
            continue
        m = re.match(r"^\s*--\s*(.+)$", lines[-1])
        if not m:
            continue
        author = re.sub(r"\s+", " ", m.group(1)).strip()
        quote = " ".join(l.strip() for l in lines[:-1])
        quote = re.sub(r"\s+", " ", quote).strip()
        if not quote or len(author) > 80:
            continue
        conversations.append((quote, author))

random.Random(18).shuffle(conversations)
with open(out, "w", encoding="utf-8") as f:
    for i, (quote, author) in enumerate(conversations[:limit]):
        if i % 2 == 0:
            user = f"Who is this quote attributed to?\n\n\"{quote}\""
            answer = f"It is attributed to {author}."
        else:
            sentence = re.split(r"(?<=[.!?])\s+", quote)[0]
            user = f"Quote the first sentence of this fortune.\n\n{quote}\n-- {author}"
            answer = sentence
        f.write(json.dumps({"messages": [{"role": "user", "content": user},
                                         {"role": "assistant", "content": answer}]}, ensure_ascii=False) + "\n")
print(f"{min(limit, len(conversations))} conversations of {len(conversations)} candidates -> {out}")
