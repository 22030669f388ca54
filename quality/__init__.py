"""The search-quality benchmark (bench/search_quality.py): its plan, sizing, statistics,
figures and recipe check, one module each."""
