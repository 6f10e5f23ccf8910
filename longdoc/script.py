"""Which script a character belongs to: the CJK character classes every stage shares.

The strings are ranges for regex character classes (f"[{HAN}]+"); `HAN_CHARACTER` matches one.
"""

from __future__ import annotations

import re

# Han ideographs: CJK Unified Ideographs Extension A, the Unified Ideographs and the Compatibility
# Ideographs, the blocks Chinese text uses.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Hiragana and katakana; hangul syllables.
KANA = "\u3040-\u30ff"
HANGUL = "\uac00-\ud7af"
# Han with kana and hangul syllables: the scripts written without spaces between words.
CJK = KANA + HAN + HANGUL
# CJK symbols and punctuation (、。「」) and the half- and full-width forms (，！（）).
CJK_PUNCTUATION = "\u3000-\u303f\uff00-\uffef"

HAN_CHARACTER = re.compile(f"[{HAN}]")
