"""Scoring: trn files, WER through sclite (or jiwer), SLUE NER F1, sentiment F1."""
