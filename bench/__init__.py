"""The benchmarks (docs/benchmarks.md): a package, so tests import the pipeline
benchmark's logic as ``bench.pipeline``."""
