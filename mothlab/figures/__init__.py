"""Matplotlib figures of mothlab results (for reports and the CLI; the app draws its own)."""
