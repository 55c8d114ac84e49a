"""Scoring: the fluency judge, quality metrics, and the quality and control evaluations."""
