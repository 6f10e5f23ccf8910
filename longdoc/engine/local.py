"""`LocalModel`: a Hugging Face causal LM on this machine behind the `Model` protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from longdoc.engine.generation import generate_tokens
from longdoc.engine.passage_attention import PassageAttention
from longdoc.model.protocol import GenerationOptions, Prompt, cut_at_stop
from longdoc.engine.reader import SegmentReader
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.errors import ModelError


class LocalModel:
    """A local causal LM that reads prompts of any length through the segment engine."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        chat: bool = True,
        cache: SegmentCacheConfig | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._name = name
        # Instruction models get their chat template; base models read the prompt as plain text.
        self.chat = chat and getattr(tokenizer, "chat_template", None) is not None
        self.reader = SegmentReader(model, cache or SegmentCacheConfig())
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        self._scorer: PassageAttention | None = None  # built on first use: read mode only

    @property
    def name(self) -> str:
        return self._name

    @property
    def context_window(self) -> int:
        config = self.reader.config
        return config.sinks + config.window

    @property
    def concurrency(self) -> int:
        return 1  # one process, one forward pass at a time: prompts batch inside generate() instead

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt, wrapped in the chat template for instruction models."""
        if self.chat:
            return self.tokenizer.encode(self._text(prompt), add_special_tokens=False)
        return self.tokenizer.encode(self._text(prompt))

    def _text(self, prompt: Prompt) -> str:
        """The prompt as the model reads it: in the chat template, or its messages' text joined."""
        if not self.chat:
            return prompt if isinstance(prompt, str) else "\n\n".join(message["content"] for message in prompt)
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def score_passages(self, prompt: Prompt, marker: str, passages: Sequence[str], baseline: str = "") -> list[float]:
        """Each passage's attention density: the attention the prompt's text after `marker` pays
        its tokens, per token, over the same for all `passages`, which stand in for `marker`; with
        `baseline` (text read between the passages and the rest), calibrated by the attention the
        baseline's text pays them (engine/passage_attention.py)."""
        before, found, after = self._text(prompt).partition(marker)
        assert found, "the prompt must hold the marker"
        if self._scorer is None:
            self._scorer = PassageAttention(self.model)
        encode = self.tokenizer.encode
        prefix = encode(before, add_special_tokens=not self.chat)
        encoded = [encode(passage, add_special_tokens=False) for passage in passages]
        calibration = encode(baseline, add_special_tokens=False) if baseline else []
        try:
            return self._scorer.score(prefix, encoded, encode(after, add_special_tokens=False), calibration)
        except torch.OutOfMemoryError as error:
            raise ModelError(f"out of memory while reading with {self.name}") from error

    def score_next(
        self, prompts: Sequence[Prompt], prefix: str, labels: Sequence[str], on_read: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        """For each prompt, the log-probability of each label's first token right after the reply
        has begun with `prefix`: nothing decoded, and the tokens the prompts share at their start
        read once (a 6K-token story under four orderings of one question's options: one read of
        the story, four of the question)."""
        encoded = [self.tokenizer.encode(self._text(p) + prefix, add_special_tokens=not self.chat) for p in prompts]
        firsts = [self.tokenizer.encode(label, add_special_tokens=False)[0] for label in labels]
        try:
            with torch.inference_mode():
                logits = self._next_logits(encoded, on_read)
        except torch.OutOfMemoryError as error:
            raise ModelError(f"out of memory while reading with {self.name}") from error
        scores = [torch.log_softmax(row.float(), dim=-1) for row in logits]
        return [[float(row[token]) for token in firsts] for row in scores]

    def _next_logits(self, encoded: list[list[int]], on_read: Callable[[int], None] | None) -> list[torch.Tensor]:
        """Logits (V,) after each token sequence: their shared beginning read once, then each rest
        read on top of it and taken back; each read whole where the memory cannot take back."""
        reader = self.reader
        shared = _shared_length(encoded)
        if len(encoded) > 1 and shared:
            cache = reader.new_cache()
            reader.read(cache, torch.tensor([encoded[0][:shared]]), on_segment=on_read)
            if cache.can_take_back():
                logits = []
                for rest in (ids[shared:] for ids in encoded):
                    logits.append(reader.peek(cache, torch.tensor([rest])))
                    if on_read is not None:
                        on_read(len(rest))
                return logits
        return [reader.read(reader.new_cache(), torch.tensor([ids]), on_segment=on_read)[0] for ids in encoded]

    def generate(
        self,
        prompts: Sequence[Prompt],
        options: GenerationOptions | None = None,
        on_token: Callable[[int], None] | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> list[str]:
        """One continuation per prompt; `on_read` / `on_token` (or the options' own) report progress
        in token counts."""
        options = options or GenerationOptions()
        if not prompts:
            return []
        encoded = [self.encode(prompt) for prompt in prompts]
        should_stop = self._stop_check(options.stop) if options.stop else None
        on_reply = options.on_reply
        on_output = (lambda i, tokens: on_reply(i, cut_at_stop(self._decode(tokens), options.stop))) if on_reply else None
        try:
            outputs = generate_tokens(
                self.reader, encoded, options, self.eos_ids, self.pad_id, should_stop,
                on_token or options.on_token, on_read or options.on_read, on_output,
            )
        except torch.OutOfMemoryError as error:
            raise ModelError(f"out of memory while generating with {self.name}: lower --batch-size") from error
        return [cut_at_stop(self._decode(tokens), options.stop) for tokens in outputs]

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _stop_check(self, stop: tuple[str, ...]) -> Callable[[list[int]], bool]:
        # A stop string can only complete within the last few tokens: decode just that tail.
        tail = max(len(s) for s in stop) + 8

        def check(tokens: list[int]) -> bool:
            text = self._decode(tokens[-tail:])
            return any(s in text for s in stop)

        return check


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if not ids:
        raise ModelError("the model defines no end-of-sequence token")
    return ids


def _shared_length(sequences: list[list[int]]) -> int:
    """How many tokens all `sequences` begin with, leaving each at least one of its own."""
    shared = min(len(ids) for ids in sequences) - 1
    first = sequences[0]
    for ids in sequences[1:]:
        shared = next((i for i in range(shared) if ids[i] != first[i]), shared)
    return max(shared, 0)
