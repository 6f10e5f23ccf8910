"""What a user would run instead of longdoc, measured with the same weights in the same run.

- full attention: plain transformers `model.generate` (greedy, a `DynamicCache`) on one prompt that
  holds the whole document; possible only while the prompt fits the model's trained context.
- plain loop: one paragraph per `model.generate` call, no context carried (translation).
- llama.cpp: `llama-cpp-python` on the same preset's GGUF, when it is installed (optional; it is
  built from source, ~7 minutes on a 2-core CPU, so the bench never installs it).

Prompts here are the baselines' own, written the way a user would write them by hand; a question
about a whole document uses bench/recall_blocks.py's `build_prompt`, as the engine's cases do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

SUMMARY_PROMPT = "Summarize the following document in about {words} words.\n\n{document}"
TRANSLATE_PROMPT = "Translate the following text into {target}. Reply with the translation only.\n\n{text}"
LANGUAGES = {"en": "English", "zh": "Chinese"}


def trained_context(local: Any) -> int:
    """Positions the model was trained on (32,768 for the Qwen2.5 presets)."""
    return int(getattr(local.model.config, "max_position_embeddings", 0) or 0)


def too_long_for_full_attention(local: Any, prompt_tokens: int, new_tokens: int) -> str | None:
    """Why full attention cannot take this prompt, or None when it fits the trained context."""
    limit = trained_context(local)
    if limit and prompt_tokens + new_tokens > limit:
        return f"beyond the model's trained context ({prompt_tokens:,} + {new_tokens} > {limit:,} tokens)"
    return None


def full_attention_generate(local: Any, prompt: str, max_new_tokens: int) -> str:
    """Greedy continuation of `prompt` (chat template applied) by plain transformers generation."""
    import torch
    from transformers import DynamicCache

    ids = torch.tensor([local.encode(prompt)], device=local.model.device)
    with torch.inference_mode():
        output = local.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            past_key_values=DynamicCache(config=local.model.config),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=local.pad_id,
            eos_token_id=sorted(local.eos_ids),
        )
    return local.tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True).strip()


def plain_translate(generate: Any, paragraphs: list[str], target: str, max_new_tokens: int = 512) -> list[str]:
    """Each paragraph translated on its own by `generate(prompt, max_new_tokens)`, in order."""
    language = LANGUAGES.get(target, target)
    return [generate(TRANSLATE_PROMPT.format(target=language, text=p), max_new_tokens) if p.strip() else p for p in paragraphs]


def llama_cpp_missing() -> str | None:
    """Why the llama.cpp baseline cannot run here, or None when it can."""
    try:
        import llama_cpp  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed (optional: pip install llama-cpp-python, builds from source)"
    return None


class LlamaCpp:
    """The preset's own GGUF in llama.cpp, greedy, with the chat template the GGUF carries."""

    def __init__(self, spec: str, context: int) -> None:
        from llama_cpp import Llama  # type: ignore[import-not-found]

        from longdoc.engine.loading import assemble_preset
        from longdoc.engine.presets import PRESETS

        if spec not in PRESETS:
            raise ValueError(f"llama.cpp baseline needs a preset, not {spec!r}")
        self._scratch = tempfile.TemporaryDirectory(prefix="bench-gguf-")
        gguf = assemble_preset(PRESETS[spec], Path(self._scratch.name) / f"{spec}.gguf")
        self.llama = Llama(model_path=str(gguf), n_ctx=context, n_threads=os.cpu_count(), verbose=False)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False))

    def generate(self, prompt: str, max_new_tokens: int) -> str:
        reply = self.llama.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], max_tokens=max_new_tokens, temperature=0.0
        )
        return str(reply["choices"][0]["message"]["content"]).strip()
