"""Reliability scripts: bounded load, a memory soak, and the report that gathers their figures.

Run from the repository root::

    python -m reliability.load --quick     # a few seconds per phase; the full run is 60 s per phase
    python -m reliability.soak --minutes 10
    python -m reliability.report --run     # runs the bounded checks, then writes docs/reliability.md
"""
