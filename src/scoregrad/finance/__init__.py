"""Option pricing and Greeks by likelihood ratio (score function), pathwise and mixed estimators."""
