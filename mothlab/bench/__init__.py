"""Benchmarks (``mothlab bench NAME``).

Each module exposes ``register(subparsers)``. A benchmark prints a table and ends with one summary
line, and compares against a re-implementation of the original approach run in the same process on
the same inputs, so the ratio holds on a noisy machine.
"""
