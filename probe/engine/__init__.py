"""The engine: variants, running both models, comparing. Never imports pytest."""
