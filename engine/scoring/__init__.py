"""Scoring: the fluency judge and the quality metrics the pipeline ranks with and the evaluations report."""
