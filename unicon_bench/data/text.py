"""A dependency-free text tokenizer for the phantoms' templated reports.

Words are lower-cased and hashed (CRC32) into a fixed vocabulary, so no vocabulary file or hub
download is needed; numbers are kept as tokens ("14", "mm") because sizes carry information.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

VOCAB_SIZE = 4096
MAX_TOKENS = 48
PAD = 0
_WORD = re.compile(r"[a-z]+|\d+")


def tokenize(text: str, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """Token ids (int64, length ``max_tokens``, 0 = padding) of one text."""
    ids = [1 + zlib.crc32(w.encode()) % (VOCAB_SIZE - 1) for w in _WORD.findall(text.lower())]
    out = np.zeros(max_tokens, dtype=np.int64)
    out[: min(len(ids), max_tokens)] = ids[:max_tokens]
    return out


def tokenize_batch(texts: list[str], max_tokens: int = MAX_TOKENS) -> np.ndarray:
    return np.stack([tokenize(t, max_tokens) for t in texts]) if texts else np.zeros((0, max_tokens), np.int64)
