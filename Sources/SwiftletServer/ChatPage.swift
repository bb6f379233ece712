/// The chat page served at `/`: one self-contained HTML document (no build step, no external
/// fetches) that streams replies from `/v1/chat/completions`.
enum ChatPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Swiftlet chat</title>
<style>
  :root { color-scheme: light dark; --accent: #e8590c; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 16px; border-bottom: 1px solid #8884; }
  header h1 { font-size: 17px; margin: 0 12px 0 0; }
  header label { font-size: 13px; display: flex; gap: 6px; align-items: center; }
  header input { width: 70px; }
  #api-key { width: 140px; }
  #stats { margin-left: auto; font-size: 13px; opacity: .75; font-variant-numeric: tabular-nums; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .message { max-width: 80%; padding: 8px 12px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }
  .user { align-self: flex-end; background: var(--accent); color: white; }
  .assistant { align-self: flex-start; background: #8882; }
  .assistant.streaming::after { content: "▍"; opacity: .6; }
  .error { align-self: center; color: #c92a2a; font-size: 13px; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid #8884; }
  #input { flex: 1; resize: none; padding: 8px; font: inherit; border-radius: 8px; border: 1px solid #8886; }
  button { padding: 0 18px; border-radius: 8px; border: none; font: inherit; cursor: pointer; }
  #send { background: var(--accent); color: white; }
  #stop { background: #c92a2a; color: white; }
  button:disabled { opacity: .4; cursor: default; }
</style>
</head>
<body>
<header>
  <h1>Swiftlet</h1>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>Max tokens <input id="max-tokens" type="number" min="1" step="1" value="256"></label>
  <label>API key <input id="api-key" type="password" autocomplete="off" placeholder="(none)"></label>
  <span id="stats"></span>
</header>
<div id="messages" aria-live="polite"></div>
<form id="composer">
  <textarea id="input" rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const history = [];
const $ = (id) => document.getElementById(id);
let controller = null;

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  document.body.dataset.state = busy ? "generating" : "idle";
}

async function send(text) {
  history.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant streaming", "");
  controller = new AbortController();
  setBusy(true);
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers["Authorization"] = "Bearer " + key;
  const body = {
    messages: history, stream: true, stream_options: { include_usage: true },
    temperature: Number($("temperature").value), max_tokens: Math.max(1, Math.floor(Number($("max-tokens").value)))
  };
  let content = "", tokens = 0, first = 0, stopped = false;
  const started = performance.now();
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error((error.error && error.error.message) || response.statusText);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const json = JSON.parse(data);
        if (json.error) throw new Error(json.error.message);
        if (json.usage) tokens = json.usage.completion_tokens;
        const delta = json.choices && json.choices[0] && json.choices[0].delta;
        if (delta && delta.content) {
          if (!first) first = performance.now();
          content += delta.content;
          tokens += json.usage ? 0 : 1;
          reply.textContent = content;
          $("messages").scrollTop = $("messages").scrollHeight;
          showStats(tokens, first, started);
        }
      }
    }
  } catch (error) {
    if (error.name === "AbortError") { stopped = true; } else { bubble("error", String(error.message || error)); }
  } finally {
    reply.classList.remove("streaming");
    if (stopped) reply.dataset.stopped = "true";
    reply.dataset.done = "true";
    showStats(tokens, first, started);
    history.push({ role: "assistant", content });
    controller = null;
    setBusy(false);
  }
}

function showStats(tokens, first, started) {
  if (!first || tokens < 1) { $("stats").textContent = ""; return; }
  const seconds = (performance.now() - first) / 1000;
  const rate = tokens > 1 && seconds > 0 ? ((tokens - 1) / seconds).toFixed(1) : "–";
  $("stats").textContent = tokens + " tokens · " + rate + " tokens/s · first token " + Math.round(first - started) + " ms";
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
setBusy(false);
</script>
</body>
</html>
"""#
}
