"""Token-level decoding over the segment engine: greedy or sampled, stop conditions, batching.

Prompts that fit the memory without sliding (prompt + answer <= sinks + window) are decoded
together, left-padded; since nothing slides, each row sees exactly what it would see alone, so
batched output equals one-at-a-time output. Longer prompts are decoded one at a time, because rows
with different padding would need different sink tokens once the window slides. A batch's prompts
are read in passes of similar lengths (`read_groups`) and their memories stacked before decoding:
padding costs what a token costs to read, and decoding gains from the batch, reading does not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch

from longdoc.model.protocol import GenerationOptions
from longdoc.engine.cache_config import SegmentCacheConfig
from longdoc.engine.lookahead import CopyLookahead
from longdoc.engine.reader import SegmentReader
from longdoc.engine.segment_cache import SegmentCache

# Read passes take prompts into one left-padded batch while their padding stays under this share
# of the pass or this many tokens (see `read_groups`).
_PADDING = 0.125
_PADDING_TOKENS = 32

# Receives a row's generated token ids; True ends that row (used for stop strings).
StopCheck = Callable[[list[int]], bool]


def plan_batches(lengths: Sequence[int], options: GenerationOptions, config: SegmentCacheConfig) -> list[list[int]]:
    """Groups of prompt indices to decode together: similar lengths, none that would slide."""
    budget = config.sinks + config.window
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    fitting = [i for i in order if lengths[i] + options.max_new_tokens <= budget]
    batches = [fitting[k : k + options.batch_size] for k in range(0, len(fitting), options.batch_size)]
    batches += [[i] for i in order if lengths[i] + options.max_new_tokens > budget]
    return batches


def generate_tokens(
    reader: SegmentReader,
    prompts: Sequence[Sequence[int]],
    options: GenerationOptions,
    eos_ids: Collection[int],
    pad_id: int,
    should_stop: StopCheck | None = None,
    on_token: Callable[[int], None] | None = None,
    on_read: Callable[[int], None] | None = None,
    on_output: Callable[[int, list[int]], None] | None = None,
) -> list[list[int]]:
    """Generated token ids per prompt (without the EOS token), in prompt order.

    `on_read(n)` reports prompt tokens read (per segment, counting padding), `on_token(1)` each
    generated token; both are for progress bars. `on_output(i, ids)` hands over prompt i's tokens
    as soon as its batch is done, so they can be kept before the next batch starts.
    """
    assert all(len(p) > 0 for p in prompts), "every prompt needs at least one token"
    results: list[list[int]] = [[] for _ in prompts]
    generator = torch.Generator().manual_seed(options.seed)
    for batch in plan_batches([len(p) for p in prompts], options, reader.config):
        outputs = _decode_batch(
            reader,
            [prompts[i] for i in batch],
            options,
            set(eos_ids),
            pad_id,
            generator,
            should_stop,
            on_token,
            on_read,
        )
        for index, output in zip(batch, outputs):
            results[index] = output
            if on_output is not None:
                on_output(index, output)
    return results


def _decode_batch(
    reader: SegmentReader,
    prompts: Sequence[Sequence[int]],
    options: GenerationOptions,
    eos_ids: set[int],
    pad_id: int,
    generator: torch.Generator,
    should_stop: StopCheck | None,
    on_token: Callable[[int], None] | None,
    on_read: Callable[[int], None] | None,
) -> list[list[int]]:
    cache, logits, order = _read_apart(reader, prompts, pad_id, on_read)
    outputs = decode_from(
        reader, cache, logits, [prompts[i] for i in order], options, eos_ids, generator, should_stop, on_token
    )
    by_prompt: list[list[int]] = [[] for _ in prompts]
    for index, output in zip(order, outputs):
        by_prompt[index] = output
    return by_prompt


def _read_apart(
    reader: SegmentReader, prompts: Sequence[Sequence[int]], pad_id: int, on_read: Callable[[int], None] | None
) -> tuple[SegmentCache, torch.Tensor, list[int]]:
    """The prompts read in passes of similar length (`read_groups`) and their memories stacked into
    one batch: that memory, the logits (B, V) after each row's last token, and each row's prompt index.

    A prompt given more than once (samples of one question) is read once and its memory copied
    to each row: reading is most of a short answer's cost on a CPU."""
    first: dict[tuple[int, ...], int] = {}
    twin = [first.setdefault(tuple(p), i) for i, p in enumerate(prompts)]  # row -> its first copy
    unique = sorted(set(twin))
    groups = [[unique[i] for i in group] for group in read_groups([len(prompts[i]) for i in unique])]
    caches, logits = [], []
    for group in groups:
        input_ids, valid = left_pad([prompts[i] for i in group], pad_id)  # (b, T) each
        cache = reader.new_cache()
        width = len(group)
        on_segment = (lambda n, width=width: on_read(n * width)) if on_read is not None else None
        logits.append(reader.read(cache, input_ids, valid, on_segment))  # (b, V)
        caches.append(cache)
    caches[0].stack(caches[1:])
    read = [i for group in groups for i in group]
    if len(read) == len(prompts):
        return caches[0], torch.cat(logits), read
    row_of = {index: row for row, index in enumerate(read)}
    order = sorted(range(len(prompts)), key=lambda i: row_of[twin[i]])  # copies beside their original
    rows = torch.tensor([row_of[twin[i]] for i in order])
    caches[0].select_rows(rows.to(reader.device))
    return caches[0], torch.cat(logits)[rows.to(logits[0].device)], order


def read_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Prompt indices to read in one pass each, longest first, so that little padding is read.

    A left-padded pass reads every row to the longest prompt's length, and a padding token costs
    what a real one does: a summary's four prompts of 516, 290, 214 and 141 tokens read 2,064 rows
    for 1,161 tokens. Rows join a pass while its padding stays within `_PADDING` (a share of the
    pass, or a few tokens, below which another pass over the weights costs more)."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if groups:
            group = groups[-1]
            padded = lengths[group[0]] * (len(group) + 1)
            padding = padded - sum(lengths[i] for i in group) - lengths[index]
            if padding <= max(_PADDING_TOKENS, _PADDING * padded):
                group.append(index)
                continue
        groups.append([index])
    return groups


def decode_from(
    reader: SegmentReader,
    cache: SegmentCache,
    logits: torch.Tensor,
    prompts: Sequence[Sequence[int]],
    options: GenerationOptions,
    eos_ids: set[int],
    generator: torch.Generator,
    should_stop: StopCheck | None = None,
    on_token: Callable[[int], None] | None = None,
) -> list[list[int]]:
    """Generated token ids per prompt, decoding from a memory that has read `prompts` (left-padded
    rows) and the logits (B, V) after their last tokens."""
    rows = [_Row(options, eos_ids, should_stop, on_token) for _ in prompts]
    active = list(range(len(prompts)))  # batch row -> prompt index, for rows still decoding
    lookahead: CopyLookahead | None = None
    while True:
        tokens = choose_tokens(logits, options, generator)  # (b,)
        keep = [row for row, token in enumerate(tokens.tolist()) if rows[active[row]].take(token)]
        if not keep:
            return [row.output for row in rows]
        if len(keep) < len(active):
            kept = torch.tensor(keep, device=reader.device)
            cache.select_rows(kept)
            tokens = tokens.to(reader.device)[kept]
            active = [active[row] for row in keep]
        if len(active) == 1 and options.temperature == 0.0 and options.lookahead > 0:
            # One greedy row left (alone from the start, or the last of its batch): guess ahead.
            row, prompt = rows[active[0]], prompts[active[0]]
            lookahead = lookahead or CopyLookahead(prompt)
            lookahead.extend(row.output[len(lookahead.tokens) - len(prompt) :])  # what it has not seen
            room = min(options.lookahead, options.max_new_tokens - len(row.output) - 1, cache.rewind_room() - 1)
            guess = lookahead.guess(room)
            if guess:
                logits, going = _check_guess(reader, cache, row, int(tokens[0]), guess)
                if not going:
                    return [row.output for row in rows]
                continue
        step_ids = tokens.to(reader.device)[:, None]  # (b, 1)
        logits = reader.step(cache, step_ids, torch.ones_like(step_ids, dtype=torch.bool))


def _check_guess(
    reader: SegmentReader, cache: SegmentCache, row: _Row, token: int, guess: list[int]
) -> tuple[torch.Tensor, bool]:
    """Feed `token` (already taken) and a guess of what follows in one pass; take the guessed
    tokens the model confirms. Returns the logits (1, V) after the last token kept, and whether
    the row goes on (False when it ended on a confirmed token)."""
    logits = reader.look_ahead(cache, torch.tensor([[token, *guess]]))  # (1 + g, V)
    chosen = logits.argmax(dim=-1).tolist()  # the model's own token after each one fed
    confirmed = 0
    while confirmed < len(guess) and chosen[confirmed] == guess[confirmed]:
        confirmed += 1
    reader.settle(cache, len(guess) - confirmed)
    for guessed in guess[:confirmed]:
        if not row.take(guessed):
            return logits, False
    return logits[confirmed : confirmed + 1], True


class _Row:
    """One prompt's generated tokens and the checks that end it."""

    def __init__(
        self,
        options: GenerationOptions,
        eos_ids: set[int],
        should_stop: StopCheck | None,
        on_token: Callable[[int], None] | None,
    ) -> None:
        self.output: list[int] = []
        self.options = options
        self.eos_ids = eos_ids
        self.should_stop = should_stop
        self.on_token = on_token
        self.loops = LoopGuard(options.loop_tokens)

    def take(self, token: int) -> bool:
        """Add a generated token; False when the row has ended (EOS, a loop, the cap, a stop string)."""
        if token in self.eos_ids:
            return False
        output = self.output
        output.append(token)
        if self.on_token is not None:
            self.on_token(1)
        if self.loops.repeated(output):
            del output[-self.options.loop_tokens :]
            return False
        return len(output) < self.options.max_new_tokens and not (self.should_stop and self.should_stop(output))


class LoopGuard:
    """Notices when a row's output starts repeating itself: its newest n-gram was seen before."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seen: set[tuple[int, ...]] = set()

    def repeated(self, output: list[int]) -> bool:
        """Call after each new token; True when the last `size` tokens occurred earlier in `output`."""
        if self.size == 0 or len(output) < self.size:
            return False
        gram = tuple(output[-self.size :])
        if gram in self.seen:
            return True
        self.seen.add(gram)
        return False


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, T) padded on the left with `pad_id`, and the mask (B, T) of real tokens."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    valid = torch.zeros((len(prompts), width), dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        valid[row, width - len(prompt) :] = True
    return ids, valid


def choose_tokens(logits: torch.Tensor, options: GenerationOptions, generator: torch.Generator) -> torch.Tensor:
    """Next token per row from logits (B, V): argmax, or a temperature / top-p sample."""
    if options.temperature == 0.0:
        return logits.argmax(dim=-1).cpu()
    probs = torch.softmax(logits.float().cpu() / options.temperature, dim=-1)  # (B, V)
    if options.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the mass before it already reaches top_p; the top token always stays.
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= options.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
