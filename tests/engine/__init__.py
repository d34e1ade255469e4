"""Tests of libs/engine: checkpoints, optimizer groups, schedules, EMA, the loops, DDP on CPU."""
