"""Text handling: the word-level tokenizer, templates with blanks and locks, spaCy syntax oracles, data files."""
