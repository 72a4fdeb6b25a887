"""The reliability suite: what happens to the catalog when processes are killed, the disk
fails or fills, writers race, and input is hostile. Each class of trials is a module here
with a `run(settings) -> list[ClassResult]`; `python -m benchmarks.reliability` runs them
and writes benchmarks/RELIABILITY.md, and tests/test_reliability.py runs the bounded form
of every class on the backend under test (failures must be 0).
"""
