"""Tests of libs/ops: NMS / Soft-NMS of both backends, batched_nms, seg_voting, collect_env."""
