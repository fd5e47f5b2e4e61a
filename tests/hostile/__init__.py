"""The hostile-input corpus (issue 14): bad, odd and malicious inputs, each with the
outcome ``docs/errors.md`` promises. ``corpus.py`` defines a case and runs it; the
``cases_*.py`` modules hold the cases, one module per class of input."""
