"""End-to-end tests: train.py / eval.py / tools/demo.py as subprocesses, DDP with the real model."""
