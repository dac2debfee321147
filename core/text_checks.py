"""Text a worker can tokenize: finds strings UTF-8 cannot encode (a lone surrogate) anywhere in parsed JSON."""

from __future__ import annotations

from collections import deque


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable_path(value, root: str = "") -> str | None:
    """The path (`input.prompt`, `messages[1].content`) of the first string, key or value, in a parsed
    JSON value that UTF-8 cannot encode, else None. JSON lets `"\\ud800"` through as a lone surrogate;
    left in, it would fail in the tokenizer of a worker, inside a batch of other owners' jobs.
    Walks with a queue, not recursion, so depth is no concern here."""
    queue = deque([(value, root)])
    while queue:
        item, path = queue.popleft()
        if isinstance(item, str):
            if not encodable(item):
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not encodable(key):
                    return path or "body"
                queue.append((child, child_path))
        elif isinstance(item, list):
            queue.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def unencodable_message(path: str) -> str:
    return (f"{path} holds text that is not valid Unicode (a lone surrogate such as \\ud800); "
            "send UTF-8 text")
