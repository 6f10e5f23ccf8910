"""One-row products of 4-bit (and int8) weights with int8 activations: `lowbit.c`, built here.

A decoding step multiplies one activation row by every weight, so its speed is the bytes it reads.
torch's CPU kernels read int8 at best (fbgemm) or 4-bit at compute speed (its int4 kernel takes
bf16 activations), which left one stream at ~0.78x llama.cpp on the same GGUF. `lowbit.c` is the
product llama.cpp's lead comes from: the GGUF's Q4_K codes against activations quantized to int8
per group of 32, integer dot products (AVX-512 VNNI or AVX2), 16 rows a vector lane each.

It is compiled at the first use with the machine's C compiler (`cc -O3 -march=native`) into the
cache directory, keyed by the source and the CPU, and loaded with ctypes. No compiler, another
architecture, or a failed build: `library()` is None and the callers keep fbgemm's int8 rows.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("lowbit.c")
ROWS = 16  # rows a tile (one per 32-bit lane of an AVX-512 vector)
GROUP = 32  # columns sharing a scale, weights and activations alike
_RECORD = {"q4": 320, "q8": 512}  # bytes of a tile's group of 32 columns (lowbit.c's header)
_BUILD_SECONDS = 120


@functools.cache
def library() -> ctypes.CDLL | None:
    """The kernel built for this CPU; None where it cannot run here."""
    if platform.machine().lower() not in ("x86_64", "amd64") or os.environ.get("LONGDOC_LOWBIT") == "0":
        return None
    built = build()
    return None if built is None else load(built)


def load(path: Path) -> ctypes.CDLL | None:
    """A built kernel, its functions typed; None if it does not load or has no vector path."""
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    lib.lowbit_isa.restype = ctypes.c_int
    if lib.lowbit_isa() == 0:
        return None  # neither AVX-512 VNNI nor AVX2 with F16C and FMA
    pointer, integer = ctypes.c_void_p, ctypes.c_int
    lib.lowbit_quantize.argtypes = [pointer, integer, pointer, pointer, pointer, pointer]
    lib.lowbit_product.argtypes = [pointer, pointer, integer, integer, integer, pointer, pointer, pointer, pointer, pointer]
    return lib


def build(march: str = "native") -> Path | None:
    """The kernel compiled for `-march` (cached by source and CPU); None without a working compiler."""
    from longdoc.memory.store import default_home

    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        return None
    key = hashlib.sha256(SOURCE.read_bytes() + march.encode() + _cpu_signature().encode()).hexdigest()[:16]
    target = default_home() / "kernels" / f"lowbit-{key}.so"
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            staging = Path(scratch) / target.name
            # OpenMP: the library binds to the libgomp torch has loaded, so it shares torch's threads.
            command = [compiler, "-O3", f"-march={march}", "-fPIC", "-shared", "-fopenmp", str(SOURCE), "-o", str(staging), "-lm"]
            subprocess.run(command, check=True, capture_output=True, timeout=_BUILD_SECONDS)
            os.replace(staging, target)  # a half-written library never looks built
    except (OSError, subprocess.SubprocessError):
        return None
    return target


def _cpu_signature() -> str:
    """What `-march=native` depends on: the CPU's model and flags (a cache shared by machines)."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor()
    lines = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


# -- weights in the kernel's layout ----------------------------------------------------------------


class Matrix:
    """Weights (rows, cols) in the kernel's tiles: "q4" (w = scale * code - offset per group of 32,
    Q4_K's form) or "q8" (w = code * scale, one scale a row)."""

    def __init__(self, kind: str, tiles: torch.Tensor, rows: int, cols: int, row_scale: torch.Tensor | None = None) -> None:
        self.kind, self.tiles, self.rows, self.cols = kind, tiles, rows, cols
        self.row_scale = row_scale

    @property
    def whole(self) -> bool:
        """Whether the buffers hold exactly this shape's tiles: the kernel reads them unchecked, so
        a stale or foreign file must never reach it."""
        if self.kind not in _RECORD or not fits(self.rows, self.cols) or self.tiles.dtype != torch.uint8:
            return False
        expected = self.rows // ROWS * (self.cols // GROUP) * _RECORD[self.kind]
        scales_ok = self.row_scale is None if self.kind == "q4" else (
            self.row_scale is not None and self.row_scale.dtype == torch.float32 and self.row_scale.numel() == self.rows)
        return self.tiles.is_contiguous() and self.tiles.numel() == expected and scales_ok


def fits(rows: int, cols: int) -> bool:
    """Whether the kernel takes this shape (whole tiles and groups)."""
    return rows % ROWS == 0 and cols % GROUP == 0 and rows > 0


def pack_q4(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> Matrix:
    """From 4-bit codes uint8 (rows, cols) and per-32 scale and offset (rows, cols / 32)."""
    rows, cols = codes.shape
    tiles, groups = rows // ROWS, cols // GROUP
    # Chunk c of a group holds columns 8c..8c+7: row i's byte j is column 8c+j | column 8c+4+j << 4.
    c = codes.reshape(tiles, ROWS, groups, 4, 2, 4).permute(0, 2, 3, 1, 5, 4)  # (T, G, chunk, row, j, half)
    nibbles = (c[..., 0] | (c[..., 1] << 4)).reshape(tiles, groups, 4 * ROWS * 4)

    def per_row(values: torch.Tensor) -> torch.Tensor:  # (rows, groups) -> (T, G, 32 bytes of f16)
        halves = values.to(torch.float16).reshape(tiles, ROWS, groups).transpose(1, 2).contiguous()
        return halves.view(torch.uint8)

    record = torch.cat([nibbles, per_row(scale), per_row(offset)], dim=-1)
    return Matrix("q4", record.contiguous().reshape(-1), rows, cols)


def pack_q8(codes: torch.Tensor, scale: torch.Tensor) -> Matrix:
    """From int8 codes (rows, cols) and one scale a row."""
    rows, cols = codes.shape
    tiles, groups = rows // ROWS, cols // GROUP
    # Chunk c of a group holds columns 4c..4c+3, row i's four bytes at 4i.
    c = codes.reshape(tiles, ROWS, groups, 8, 4).permute(0, 2, 3, 1, 4)  # (T, G, chunk, row, 4)
    record = c.contiguous().view(torch.uint8).reshape(-1)
    return Matrix("q8", record, rows, cols, scale.float().contiguous())


# -- the product -----------------------------------------------------------------------------------


class OneRowProduct:
    """One activation row times several matrices that take it (q/k/v, say): the row quantized once,
    the products side by side in one output (rows of all, in order)."""

    def __init__(self, matrices: list[Matrix], lib: ctypes.CDLL | None = None) -> None:
        if len({m.cols for m in matrices}) != 1:
            raise ValueError("matrices multiplied by one row share their input width")
        found = lib or library()
        if found is None:
            raise RuntimeError("the low-bit kernel does not run here (see lowbit_kernel.library)")
        self.lib = found
        self.matrices = matrices
        self.cols = matrices[0].cols
        self.rows = sum(m.rows for m in matrices)
        # The quantized row, reused by every call (one forward at a time, as the local model runs).
        groups = self.cols // GROUP
        self._q = torch.empty(self.cols, dtype=torch.int8)
        self._dx, self._dsum = torch.empty(groups), torch.empty(groups)
        self._qsum = torch.empty(groups, dtype=torch.int32)
        self._row = (self._q.data_ptr(), self._dx.data_ptr(), self._dsum.data_ptr(), self._qsum.data_ptr())
        self._calls = [(m.tiles.data_ptr(), 0 if m.row_scale is None else m.row_scale.data_ptr(), int(m.kind == "q4"), m.rows, m.cols) for m in matrices]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (1, cols), any float dtype -> (1, rows) in x's dtype."""
        lib = self.lib
        row = x.reshape(-1).float().contiguous()
        lib.lowbit_quantize(row.data_ptr(), self.cols, *self._row)
        out = torch.empty(self.rows)
        address = out.data_ptr()
        for call in self._calls:
            lib.lowbit_product(*call, *self._row, address)
            address += 4 * call[3]  # f32 outputs, this matrix's rows
        return out.view(1, -1).to(x.dtype)
