"""`aigc chat MODEL`: a conversation in the terminal, each reply printed as it streams from POST /v1/chat/completions."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from aigc.client import ApiError, api_error

HELP = ("Type a message and press Enter. /system TEXT sets the system prompt, /reset starts over, "
        "Ctrl-C stops a reply, Ctrl-D quits.")


# A model may write control characters (the untrained built-in does): shown as they would be by the
# web page, not obeyed by the terminal (a bell, a cursor move, a cleared line).
_CONTROL = {c: None for c in range(32) if chr(c) not in "\n\t"} | {0x7f: None}


def printable(text: str) -> str:
    return text.translate(_CONTROL)


class Chat:
    """The conversation and its settings; `reply` streams one assistant turn to `out`."""

    def __init__(self, base_url: str, api_key: str, model: str, system: str = "", max_tokens: int | None = None,
                 temperature: float | None = None, out=sys.stdout):
        self.url, self.key, self.model = base_url.rstrip("/") + "/v1/chat/completions", api_key, model
        self.system, self.max_tokens, self.temperature, self.out = system, max_tokens, temperature, out
        self.history: list[dict] = []

    def _body(self, messages: list[dict]) -> bytes:
        body = {"model": self.model, "stream": True,
                "messages": ([{"role": "system", "content": self.system}] if self.system else []) + messages}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return json.dumps(body).encode()

    def reply(self, text: str) -> str:
        """Send `text`, print the reply as it comes; the turn joins the history even if stopped with
        Ctrl-C (the server then cancels the job when the connection closes)."""
        messages = self.history + [{"role": "user", "content": text}]
        req = urllib.request.Request(self.url, data=self._body(messages), method="POST", headers={
            "Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        content = ""
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                for raw in resp:
                    line = raw.decode("utf-8").rstrip("\n")
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise ApiError(500, chunk)
                    for choice in chunk["choices"]:
                        piece = choice["delta"].get("content") or ""
                        content += piece
                        self.out.write(printable(piece))
                        self.out.flush()
        except urllib.error.HTTPError as exc:
            raise api_error(exc) from None
        except KeyboardInterrupt:
            self.out.write(" [stopped]")
        finally:
            self.out.write("\n")
            self.out.flush()
        self.history = messages + [{"role": "assistant", "content": content}]
        return content

    def command(self, line: str) -> bool:
        """Handle /system, /reset, /help; True if `line` was one."""
        name, _, rest = line.partition(" ")
        if name == "/system":
            self.system = rest.strip()
            print(f"(system prompt {'set' if self.system else 'cleared'})", file=self.out)
        elif name == "/reset":
            self.history = []
            print("(conversation cleared)", file=self.out)
        elif name in ("/help", "/?"):
            print(HELP, file=self.out)
        else:
            return False
        return True


def run_chat(base_url: str, api_key: str, model: str, **settings) -> int:
    chat = Chat(base_url, api_key, model, **settings)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {model}. {HELP}")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:  # Ctrl-D
            print()
            return 0
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh line, not an exit
            print()
            continue
        line = line.strip()
        if not line or chat.command(line):
            continue
        if interactive:
            print("assistant> ", end="", flush=True)
        try:
            chat.reply(line)
        except ApiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            if exc.status in (401, 403, 404):  # a wrong key or server: every next turn would fail alike
                return 1
            if (exc.body.get("error", {}) if isinstance(exc.body, dict) else {}).get("code") \
                    == "context_length_exceeded":
                print("(the conversation no longer fits the model: /reset starts over)", file=sys.stderr)
        except urllib.error.URLError as exc:
            print(f"error: cannot reach {base_url}: {exc.reason}. Is the platform running, and "
                  "AIGC_API_URL right?", file=sys.stderr)
            return 1
