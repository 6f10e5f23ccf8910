"""Read mode's selector: the attention a question pays to each passage, on tiny random models."""

from __future__ import annotations

import pytest
import torch
from test_engine import VOCAB, tiny_model

from longdoc.engine.passage_attention import PassageAttention, ScoringConfig

KINDS = ["qwen2", "llama", "qwen3", "gemma3"]


def _eager_density(kind: str, ids: list[int], bounds: list[tuple[int, int]], question: int, layers: list[int]) -> torch.Tensor:
    """The same densities from the model's own attention probabilities (eager attention)."""
    model = tiny_model(kind)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions
    mass = sum(attentions[index][0, :, question:].sum(dim=(0, 1)) for index in layers)
    per_token = torch.stack([mass[a:b].mean() for a, b in bounds])
    return per_token / mass[bounds[0][0] : bounds[-1][1]].mean()


@pytest.mark.parametrize("kind", KINDS)
def test_passage_scores_are_the_models_own_attention_from_the_question(kind: str) -> None:
    torch.manual_seed(1)
    prefix = torch.randint(1, VOCAB, (5,)).tolist()
    passages = [torch.randint(1, VOCAB, (n,)).tolist() for n in (7, 3, 9)]
    suffix = torch.randint(1, VOCAB, (4,)).tolist()
    scorer = PassageAttention(tiny_model(kind))
    scores = scorer.score(prefix, passages, suffix)
    ids = prefix + [t for p in passages for t in p] + suffix
    bounds = [(5, 12), (12, 15), (15, 24)]
    expected = _eager_density(kind, ids, bounds, len(ids) - 4, scorer.layers)
    assert torch.allclose(torch.tensor(scores), expected, atol=1e-4)
    # per token, over the passages' average: weighted by length they average to 1
    assert sum(s * n for s, n in zip(scores, (7, 3, 9))) / 19 == pytest.approx(1.0)
    if kind == "gemma3":  # its first layer is a 12-token sliding window: only the global one votes
        assert scorer.layers == [1]


def test_layers_above_the_last_scoring_layer_never_run() -> None:
    model = tiny_model("qwen2")
    ran: list[int] = []
    for index, layer in enumerate(model.get_decoder().layers):
        layer.register_forward_hook(lambda module, args, output, index=index: ran.append(index))
    scorer = PassageAttention(model, ScoringConfig(first=0.0, last=0.4))
    scores = scorer.score([3, 4], [[5, 6, 7], [8, 9]], [10, 11])
    assert scorer.layers == [0] and ran == [0]
    assert len(scores) == 2 and all(s > 0 for s in scores)


@pytest.mark.parametrize("kind", ["qwen2", "gemma3"])
def test_calibrated_scores_divide_the_questions_attention_by_the_baselines(kind: str) -> None:
    torch.manual_seed(2)
    prefix = torch.randint(1, VOCAB, (4,)).tolist()
    passages = [torch.randint(1, VOCAB, (n,)).tolist() for n in (6, 4, 8)]
    baseline, suffix = torch.randint(1, VOCAB, (3,)).tolist(), torch.randint(1, VOCAB, (5,)).tolist()
    scorer = PassageAttention(tiny_model(kind))
    scores = scorer.score(prefix, passages, suffix, baseline)
    ids = prefix + [t for p in passages for t in p] + baseline + suffix
    bounds = [(4, 10), (10, 14), (14, 22)]
    model = tiny_model(kind)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions
    question = sum(attentions[i][0, :, len(ids) - 5 :].sum(dim=(0, 1)) for i in scorer.layers)
    calibration = sum(attentions[i][0, :, len(ids) - 8 : len(ids) - 5].sum(dim=(0, 1)) for i in scorer.layers)
    ratio = torch.stack([question[a:b].sum() / calibration[a:b].sum() for a, b in bounds])
    assert torch.allclose(torch.tensor(scores), ratio / ratio.mean(), atol=1e-4)


def test_the_local_model_reads_the_baseline_between_the_passages_and_the_closing_question() -> None:
    from test_engine import char_tokenizer

    from longdoc.engine.cache_config import SegmentCacheConfig
    from longdoc.engine.local import LocalModel
    from longdoc.model.protocol import PassageScorer

    model = LocalModel(tiny_model("qwen2"), char_tokenizer(), name="tiny", chat=False, cache=SegmentCacheConfig(sinks=4, window=96, segment=16))
    assert isinstance(model, PassageScorer)
    passages = ["the lamp room", "a brass key", "north office"]
    scores = model.score_passages("Q: key?\n<@>\nQ: key?", "<@>", passages, baseline="Q: N/A\n")
    encode = char_tokenizer().encode
    direct = PassageAttention(tiny_model("qwen2")).score(
        encode("Q: key?\n"), [encode(p) for p in passages], encode("\nQ: key?"), encode("Q: N/A\n"))
    assert scores == pytest.approx(direct) and sum(scores) == pytest.approx(3.0)
