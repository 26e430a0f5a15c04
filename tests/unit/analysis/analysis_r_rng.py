"""R's default random number generation (Mersenne-Twister + inversion), for R's examples.

R's documentation examples draw their data with ``set.seed(...)`` and ``rnorm(...)``. To feed
exactly those data to our functions we reproduce R's generator: ``set.seed`` scrambles the
seed with the LCG ``seed = 69069 * seed + 1`` (50 times, then once per state word) into the 624
Mersenne-Twister words; ``unif_rand`` is the MT19937 output times 2^-32; ``norm_rand``
(inversion) is ``qnorm((floor(2^27 u1) + u2) / 2^27)``. This is test scaffolding only: the
printed R output stays the oracle, and ``round(p, 3)`` in the same R example checks the data.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

_BIG = 134217728.0  # 2^27
_I2_32M1 = 2.328306437080797e-10


class RRandom:
    """A stream equal to R's after ``set.seed(seed)`` with the default RNG kinds."""

    def __init__(self, seed: int) -> None:
        s = seed & 0xFFFFFFFF
        for _ in range(50):
            s = (69069 * s + 1) & 0xFFFFFFFF
        words = []
        for _ in range(625):
            s = (69069 * s + 1) & 0xFFFFFFFF
            words.append(s)
        key = np.array(words[1:], dtype=np.uint32)  # words[0] is mti, reset to 624 by FixupSeeds
        self._bg = np.random.MT19937()
        self._bg.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}

    def unif_rand(self) -> float:
        value = float(self._bg.random_raw()) * 2.3283064365386963e-10
        if value <= 0.0:
            return 0.5 * _I2_32M1
        if 1.0 - value <= 0.0:
            return 1.0 - 0.5 * _I2_32M1
        return value

    def norm_rand(self) -> float:
        u = self.unif_rand()
        u = int(_BIG * u) + self.unif_rand()
        return float(stats.norm.ppf(u / _BIG))

    def rnorm(self, n: int, mean: float | np.ndarray = 0.0, sd: float = 1.0) -> np.ndarray:
        z = np.array([self.norm_rand() for _ in range(n)])
        return np.asarray(mean, dtype=float) + sd * z
