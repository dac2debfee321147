"""Fine-tuning files: plain text, {"prompt", "completion"} or OpenAI's chat format, checked line by line.

A chat file's problems carry the names OpenAI's data-preparation guide counts
(missing_messages_list, message_unrecognized_key, ...), so a user who prepared data for OpenAI
reads the same words here. Every problem names its line; the first few are reported at once.
"""

from __future__ import annotations

from core.errors import InvalidInput
from core.textfiles import decode_text, first_line, jsonl_objects, text_lines

MIN_EXAMPLES = 10  # what OpenAI asks of a training file, and the least that shows learning
CHAT_ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
SHOWN_PROBLEMS = 5


class DataProblem(InvalidInput):
    """A training file's problems; `code` is the first one's name, the message lists them by line."""


def parse_finetune(data: bytes) -> list[dict]:
    """Examples from UTF-8 plain text (one per non-blank line) or JSONL, each line one of
    {"text"}, {"prompt", "completion"} or {"messages": [...]}; at least MIN_EXAMPLES of them. Each
    example carries its `line` number, for errors found later (one too long for the model)."""
    text = decode_text(data)
    first = first_line(text)
    if first is None:
        raise InvalidInput("The file has no text", param="file")
    if not first.lstrip().startswith("{"):
        examples = [{"text": line, "line": number} for number, line in enumerate(text_lines(text), start=1)
                    if line.strip()]
    else:
        examples, problems = [], []
        for number, obj in jsonl_objects(text):
            try:
                examples.append({**_example(obj, number), "line": number})
            except _Problem as problem:
                problems.append(problem)
                if len(problems) == SHOWN_PROBLEMS:
                    break
        if problems:
            raise DataProblem("; ".join(f"line {p.line}: {p.name}: {p.detail}" for p in problems),
                              param="file", code=problems[0].name,
                              errors=[{"param": "file", "code": p.name, "message": f"line {p.line}: {p.detail}"}
                                      for p in problems])
    if len(examples) < MIN_EXAMPLES:
        raise DataProblem(f"The file has {len(examples)} example(s); fine-tuning needs at least {MIN_EXAMPLES}",
                          param="file", code="too_few_examples")
    return examples


class _Problem(Exception):
    def __init__(self, line: int, name: str, detail: str):
        super().__init__(detail)
        self.line, self.name, self.detail = line, name, detail


def _example(obj: dict, line: int) -> dict:
    if "messages" in obj:
        return {"messages": _messages(obj, line)}
    if isinstance(obj.get("text"), str) and obj["text"].strip():
        return {"text": obj["text"]}
    if ({"prompt", "completion"} <= set(obj) and all(isinstance(obj[k], str) for k in ("prompt", "completion"))
            and obj["completion"].strip()):
        return {"prompt": obj["prompt"], "completion": obj["completion"]}
    raise _Problem(line, "missing_messages_list",
                   'expected {"messages": [...]}, {"text": "..."} or {"prompt": "...", "completion": "..."}')


def _messages(obj: dict, line: int) -> list[dict]:
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise _Problem(line, "missing_messages_list", "messages must be a non-empty list")
    out = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _Problem(line, "data_type", f"{where} must be an object")
        unknown = sorted(set(message) - set(MESSAGE_KEYS))
        if unknown:
            raise _Problem(line, "message_unrecognized_key", f"{where} has {', '.join(unknown)}; "
                                                             f"a message has {', '.join(MESSAGE_KEYS)}")
        if "role" not in message:
            raise _Problem(line, "message_missing_key", f"{where} has no role")
        if message["role"] not in CHAT_ROLES:
            raise _Problem(line, "unrecognized_role", f"{where}.role {message['role']!r} is not one of "
                                                      f"{', '.join(CHAT_ROLES)}")
        if not isinstance(message.get("content"), str) or not message["content"]:
            raise _Problem(line, "missing_content", f"{where} needs content, a non-empty string")
        weight = message.get("weight", 1)
        if "weight" in message and (message["role"] != "assistant" or weight not in (0, 1) or isinstance(weight, bool)):
            raise _Problem(line, "invalid_weight", f"{where}.weight must be 0 or 1, on an assistant message only")
        out.append({"role": message["role"], "content": message["content"], "weight": int(weight)})
    if not any(m["role"] == "assistant" for m in out):
        raise _Problem(line, "example_missing_assistant_message", "the example has no assistant message to learn")
    return out
