"""Checks of a data set against its config (tools/check_dataset.py is the command line).

One module a concern: annotations, feature files, the grid; findings go into a :class:`Report`.
"""
from .annotations import check_annotations, class_rule
from .features import NAN_SAMPLE, check_features
from .feature_files import FeatureFiles
from .grid import check_grid
from .report import SHOW, Report, first_ids

__all__ = ["NAN_SAMPLE", "SHOW", "FeatureFiles", "Report", "check_annotations",
           "check_features", "check_grid", "class_rule", "first_ids"]
