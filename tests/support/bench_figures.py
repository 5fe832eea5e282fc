"""What a benchmark's reported figures must agree on, given how it rounds them."""

from __future__ import annotations


def agrees_with_rounded_times(ratio: float, numerator: float, denominator: float, *, half_step: float = 0.005) -> bool:
    """``ratio`` is of the unrounded times, each reported rounded (to 10 ms by default): for a tiny smoke run the
    rounding is a large share of a time, so the ratio is held to the range the rounded times allow."""
    low = (numerator - half_step) / (denominator + half_step)
    high = (numerator + half_step) / max(denominator - half_step, 1e-9)
    return low - 0.0005 <= ratio <= high + 0.0005  # and the ratio itself is rounded to 3 places
