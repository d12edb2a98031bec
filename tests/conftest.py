"""Test settings. Statistical thresholds live in scoregrad.testing (|z| < 4.42: 1e-5 per component)."""

import os

import torch

torch.set_num_threads(int(os.environ.get("SCOREGRAD_TEST_THREADS", "1")))
