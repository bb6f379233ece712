"""Talks to `swiftlet serve` with the official openai client; prints what it got as JSON.

Usage: openai_client.py BASE_URL API_KEY CHAT_MODEL EMBEDDING_MODEL
"""
import json
import sys

import openai

base, key, chat_model, embedding_model = sys.argv[1:5]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=120)
messages = [{"role": "user", "content": "What is the capital of France?"}]

plain = client.chat.completions.create(model=chat_model, messages=messages, temperature=0, max_tokens=40)
streamed = client.chat.completions.create(model=chat_model, messages=messages, temperature=0, max_tokens=40,
                                          stream=True, stream_options={"include_usage": True})
pieces, usage, finish = [], None, None
for chunk in streamed:
    if chunk.usage is not None:
        usage = chunk.usage.completion_tokens
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason

embeddings = client.embeddings.create(model=embedding_model, input=["A cat sits.", "A dog runs."])
models = [m.id for m in client.models.list().data]

try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    not_found = None
except openai.NotFoundError as error:
    not_found = error.status_code

try:
    openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
    unauthorized = None
except openai.AuthenticationError as error:
    unauthorized = error.status_code

print(json.dumps({
    "plain": plain.choices[0].message.content,
    "plain_finish": plain.choices[0].finish_reason,
    "plain_usage": plain.usage.completion_tokens,
    "streamed": "".join(pieces),
    "streamed_usage": usage,
    "streamed_finish": finish,
    "embeddings": [d.embedding for d in embeddings.data],
    "models": models,
    "not_found": not_found,
    "unauthorized": unauthorized,
}))
