"""Servers fastnet is compared against, started by the benchmarks."""
