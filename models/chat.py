"""Chat prompts: a conversation rendered by the tokenizer's own chat template, or ChatML where it has none."""

from __future__ import annotations

# ChatML (the format OpenAI's models were trained on, and many open ones): each turn
# "<|im_start|>{role}\n{content}<|im_end|>\n", then "<|im_start|>assistant\n" for the reply. The
# markers are plain text to a tokenizer that lacks them (GPT-2, the built-ins); `<|im_end|>` is
# also a stop string for such a model, since it cannot end its turn with a special token.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHATML_END = "<|im_end|>"


def has_own_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer, messages: list[dict]) -> str:
    """The text a causal LM continues to write the assistant's next turn: the tokenizer's
    `chat_template` with the generation prompt, else ChatML. Messages are {role, content} with
    content a string."""
    template = None if has_own_template(tokenizer) else CHATML_TEMPLATE
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=True)


def chat_stops(tokenizer) -> tuple[str, ...]:
    """Stop strings a chat needs besides the caller's: ChatML's end of turn where the model has no
    template of its own (its end-of-turn is then text, not a token generation stops on)."""
    return () if has_own_template(tokenizer) else (CHATML_END,)


def render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    """A conversation as the model reads it (the same template as chat_prompt), for training."""
    template = None if has_own_template(tokenizer) else CHATML_TEMPLATE
    turns = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(turns, chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)
