"""Benchmarks (`rowmix bench ...`): ratios measured side by side in one run, written as JSON and
Markdown (with plots where they help)."""
