"""Protocol comparison harness, pytest-benchmark suites and recorded results."""
