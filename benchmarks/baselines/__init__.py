"""Plain re-implementations of official code, kept only as speed baselines for the benchmarks."""
