"""Tests of libs/datasets: the four data sets, the loader, truncation, bad-input errors."""
