"""Medians, spreads and table cells. Every figure is shown with its spread, so its noise is visible."""
import statistics

from .procs import BenchError


def median(values):
    if not values:
        raise BenchError("no values for a figure")
    return statistics.median(values)


def cell(values, fmt, spread=True):
    """'median [min–max]' (n=1: just the value)."""
    if not values:
        raise BenchError("no values for a table cell")
    m = fmt(statistics.median(values))
    if not spread or len(values) == 1:
        return m
    return f"{m} [{fmt(min(values))}–{fmt(max(values))}]"


def pct(v, digits=1):
    return f"{v * 100:.{digits}f}%"


def signed_pct(v, digits=1):
    return f"{v * 100:+.{digits}f}%"


def interleave(configs, rng):
    """B c1 B c2 B ... cN B with the configurations shuffled: each profiled run has a baseline on
    either side."""
    order = list(configs)
    rng.shuffle(order)
    seq = [None]
    for c in order:
        seq += [c, None]
    return seq
