"""HyperLogLog sketches of visitor ids: counting unique visitors over any range of days
from one small sketch per day (Flajolet et al. 2007, with linear counting for small sets).

With 2**12 registers the standard error is about 1.6%; for a few hundred visitors or
fewer, linear counting is off by a visitor or two at most. Sketches of the same ids are
identical whatever the order they were added in, which lets the rollup tests compare them
byte for byte.
"""

import hashlib
import math
from collections.abc import Iterable

import numpy as np

PRECISION = 12
REGISTERS = 1 << PRECISION
_REST_BITS = 64 - PRECISION
_ALPHA = 0.7213 / (1 + 1.079 / REGISTERS)


def sketch(ids: Iterable[str]) -> bytes:
    """The sketch of a set of ids (an empty set gives all-zero registers)."""
    registers = bytearray(REGISTERS)
    for visitor in ids:
        value = int.from_bytes(hashlib.blake2b(visitor.encode(), digest_size=8).digest())
        index = value >> _REST_BITS
        rest = value & ((1 << _REST_BITS) - 1)
        rank = _REST_BITS - rest.bit_length() + 1
        if rank > registers[index]:
            registers[index] = rank
    return bytes(registers)


def merge(sketches: Iterable[bytes]) -> np.ndarray:
    """Register-wise maximum of the sketches."""
    merged = np.zeros(REGISTERS, dtype=np.uint8)
    for one in sketches:
        np.maximum(merged, np.frombuffer(one, dtype=np.uint8), out=merged)
    return merged


def estimate(registers: np.ndarray) -> int:
    """Estimated number of distinct ids behind the (merged) registers."""
    zeros = int(np.count_nonzero(registers == 0))
    if zeros == REGISTERS:
        return 0
    raw = _ALPHA * REGISTERS * REGISTERS / float(np.sum(np.ldexp(1.0, -registers.astype(int))))
    if raw <= 2.5 * REGISTERS and zeros:
        return round(REGISTERS * math.log(REGISTERS / zeros))
    return round(raw)


def count(sketches: Iterable[bytes]) -> int:
    return estimate(merge(sketches))
