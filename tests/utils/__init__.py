"""Tests of libs/utils: the one-line-error CLI wrapper, signal handling, the procedure switch."""
