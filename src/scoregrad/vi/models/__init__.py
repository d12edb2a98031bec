"""Models for ``scoregrad.vi``, each with an exact answer or a literature figure to compare with."""
