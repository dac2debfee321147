// The chat page: keeps the conversation, streams each reply as server-sent events and draws it as it grows.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("chat");
  if (!root) return;
  const form = $("chat-form"), box = $("message"), turns = $("turns"), errorBox = $("chat-error");
  let history = [];  // [{role, content}] of finished turns
  let controller = null;
  let conversation = 0;  // bumped by "New chat": a reply of an older conversation leaves history alone

  function bubble(role, text) {
    const li = document.createElement("li");
    li.className = "turn turn-" + role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : "Assistant";
    const body = document.createElement("div");
    body.className = "content";
    body.textContent = text;
    li.append(who, body);
    turns.append(li);
    li.scrollIntoView({ block: "end" });
    return body;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function busy(on) {
    $("send").disabled = on;
    $("stop").disabled = !on;
    root.dataset.state = on ? "streaming" : "idle";
  }

  // A blank field is left out (the server's default); anything else is sent for the server to check.
  const number = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));

  function request(messages) {
    const system = $("system").value.trim();
    const body = {
      model: $("model").value,
      messages: (system ? [{ role: "system", content: system }] : []).concat(messages),
      max_tokens: number("max_tokens"),
      temperature: number("temperature"),
      top_p: number("top_p"),
    };
    const data = new FormData();
    data.append("csrf_token", form.elements.csrf_token.value);
    data.append("body", JSON.stringify(body));
    return data;
  }

  // Reads `data: ...` events from the response body as they arrive; calls onEvent with each JSON.
  async function readEvents(resp, onEvent) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const payload = line.slice(6);
          if (payload === "[DONE]") return;
          onEvent(JSON.parse(payload));
        }
      }
    }
  }

  async function send(text) {
    showError("");
    const mine = conversation;
    const messages = history.concat([{ role: "user", content: text }]);
    bubble("user", text);
    const reply = bubble("assistant", "");
    reply.parentElement.classList.add("streaming");
    controller = new AbortController();
    busy(true);
    let content = "", finished = false;
    try {
      const resp = await fetch(root.dataset.send, { method: "POST", body: request(messages),
                                                     credentials: "same-origin", signal: controller.signal });
      if (!resp.ok) {
        const data = await resp.json().catch(() => ({}));
        const err = data.error || {};
        const message = err.message || `HTTP ${resp.status}`;
        throw new Error(err.param && !message.includes(err.param) ? `${err.param}: ${message}` : message);
      }
      await readEvents(resp, (chunk) => {
        if (chunk.error) throw new Error(chunk.error.message);
        for (const choice of chunk.choices) {
          if (choice.delta && choice.delta.content) {
            content += choice.delta.content;
            reply.textContent = content;
          }
          if (choice.finish_reason) finished = true;
        }
      });
      if (mine === conversation) history = messages.concat([{ role: "assistant", content }]);
      box.value = "";
    } catch (e) {
      if (e.name === "AbortError") {
        reply.parentElement.classList.add("stopped");
        // A stopped reply stays in the conversation as far as it got.
        if (mine === conversation) history = messages.concat([{ role: "assistant", content }]);
        box.value = "";
      } else {
        reply.parentElement.remove();
        turns.lastElementChild && turns.lastElementChild.remove();
        showError(e.message);
      }
    } finally {
      reply.parentElement && reply.parentElement.classList.remove("streaming");
      root.dataset.finished = String(finished);
      controller = null;
      busy(false);
      box.focus();
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = box.value.trim();
    if (text && !controller) send(text);
  });
  box.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => controller && controller.abort());
  $("reset").addEventListener("click", () => {
    conversation += 1;
    if (controller) controller.abort();
    history = [];
    turns.replaceChildren();
    showError("");
    box.focus();
  });
  busy(false);
})();
