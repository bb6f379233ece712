#!/usr/bin/env python3
"""Expected renders of the chat-template fixtures, made by transformers itself.

Usage: scripts/chat_template_fixtures.py TEMPLATES_DIR OUT_DIR

Copies every TEMPLATES_DIR/*.jinja into OUT_DIR/templates/, reads the conversations in
OUT_DIR/conversations.json, and renders each (template, conversation) pair with transformers'
`render_jinja_template` -- the function `apply_chat_template` calls: jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, transformers' tojson,
raise_exception and strftime_now -- writing OUT_DIR/expected.json:
{template: {conversation: {"output": text} | {"error": message}}}.
strftime_now sees a fixed date (FIXED_DATE) so the renders are reproducible; bos_token and
eos_token are BOS and EOS below.
"""
import datetime as _datetime
import json
import os
import shutil
import sys

import transformers.utils.chat_template_utils as ctu

FIXED_DATE = _datetime.datetime(2026, 7, 26, 0, 0, 0)
BOS, EOS = "<|bos|>", "<|eos|>"


class _FixedDateTime(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_DATE


ctu.datetime = _FixedDateTime


def render(template, conversation):
    rendered, _ = ctu.render_jinja_template(
        conversations=[conversation["messages"]],
        tools=conversation.get("tools"),
        documents=None,
        chat_template=template,
        add_generation_prompt=conversation["add_generation_prompt"],
        bos_token=BOS,
        eos_token=EOS,
    )
    return rendered[0]


def main():
    templates_dir, out_dir = sys.argv[1], sys.argv[2]
    with open(os.path.join(out_dir, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    os.makedirs(os.path.join(out_dir, "templates"), exist_ok=True)
    expected = {}
    for name in sorted(os.listdir(templates_dir)):
        if not name.endswith(".jinja"):
            continue
        shutil.copyfile(os.path.join(templates_dir, name), os.path.join(out_dir, "templates", name))
        with open(os.path.join(templates_dir, name), encoding="utf-8", newline="") as f:
            template = f.read()
        results = {}
        for conversation_name, conversation in conversations.items():
            try:
                results[conversation_name] = {"output": render(template, conversation)}
            except Exception as e:  # the Swift side must fail too, with a typed error
                results[conversation_name] = {"error": f"{type(e).__name__}: {e}"}
        expected[name] = results
    with open(os.path.join(out_dir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
