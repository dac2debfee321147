"""Incremental detokenizing for streamed replies: new text as tokens arrive, never text a later token or stop string would take back."""

from __future__ import annotations

from models.text import DECODE


class TextStream:
    """One sequence's text as it grows, token by token.

    The raw text only ever grows at its end: a token is decoded together with a few tokens before
    it (as vLLM does), since a SentencePiece-style tokenizer spells a leading space from context,
    and a byte-level one needs the bytes of a character that spans tokens. What `push` returns holds
    back what may still change: a trailing incomplete character (U+FFFD) and a tail that could be
    the start of a stop string. Text after a stop string or end-of-text never goes out, so what was
    sent is always a prefix of the final completion (`models.text._finish`).
    """

    def __init__(self, tokenizer, stop: tuple[str, ...] = (), end_ids: tuple[int, ...] = ()):
        self.tok, self.stop = tokenizer, stop
        self.end_ids = set(end_ids) or {tokenizer.eos_token_id}  # tokens that end the reply
        self.ids: list[int] = []
        self.text = ""  # decoded so far, complete characters only
        self.sent = 0  # characters of `text` already handed out
        self.ended = False
        self._prefix = self._read = 0  # vLLM's prefix_offset / read_offset

    def push(self, token_id: int) -> str:
        """Take the next token; return the text that may go out now ('' if none)."""
        if self.ended:
            return ""
        if token_id in self.end_ids:
            self.ended = True
            return self._release(self.text)
        self.ids.append(token_id)
        before = self.tok.decode(self.ids[self._prefix:self._read], **DECODE)
        after = self.tok.decode(self.ids[self._prefix:], **DECODE)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before):]
            self._prefix, self._read = self._read, len(self.ids)
        cut = min((self.text.find(s) for s in self.stop if s in self.text), default=-1)
        if cut >= 0:
            self.ended = True
            return self._release(self.text[:cut])
        return self._release(self.text[:len(self.text) - self._held_back()])

    def rest(self, final_text: str) -> str:
        """What the final completion adds to what was sent (what push held back, a closing
        character); '' if the final text does not extend it (it always should)."""
        sent = self.text[:self.sent]
        return final_text[len(sent):] if final_text.startswith(sent) else ""

    def _held_back(self) -> int:
        """Characters at the end of the text that a later token could make part of a stop string."""
        longest = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text)), longest, -1):
                if self.text.endswith(s[:k]):
                    longest = k
                    break
        return longest

    def _release(self, visible: str) -> str:
        if len(visible) <= self.sent:
            return ""
        out = visible[self.sent:]
        self.sent = len(visible)
        return out
