"""Tests of libs/modeling: layers, attention, assignment, losses, decoding, padding, state_dict."""
