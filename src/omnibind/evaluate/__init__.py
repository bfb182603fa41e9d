"""Evaluators (zero-shot classification, cross-modal retrieval) and the run report."""
