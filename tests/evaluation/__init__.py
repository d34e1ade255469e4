"""Tests of libs/evaluation: ANETdetection, matching, metric modes, score fusion."""
