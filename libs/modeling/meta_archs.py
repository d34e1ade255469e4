"""The ActionFormer model `LocPointTransformer` (class PtTransformer), docs/reference.md §3.10, §4,
§5.

Mirrors ``PtTransformer`` of the original's ``libs/modeling/meta_archs.py``. Frozen: the
constructor keywords (``make_meta_arch(cfg['model_name'], **cfg['model'])``), the submodule
names and order ``backbone, neck, point_generator, cls_head, reg_head`` (state_dict order and
RNG order at init), and ``loss_normalizer`` being a plain Python float (not in the state_dict).
Differences: train/test options are parsed into two frozen dataclasses; label assignment,
decoding and post-processing are pure functions (assigner.py, decoding.py); the device comes
from the parameters.

Speed-ups that keep the numbers (docs/performance.md):
* ``forward`` pads each batch, in training and at inference, only as far as the result
  requires ('minimal', padding.py: the default of the FAST procedure,
  libs/utils/procedure.py); 'original' (config ``train_cfg.padding`` / ``test_cfg.padding``,
  the attributes ``train_padding`` / ``padding``, or the faithful procedure) restores the
  original rule. The stage methods ``preprocessing`` / ``forward_features`` default to the
  original rule, so they reproduce the original's tensors shape for shape.
* the loss normaliser EMA is updated without reading the positive count back to the host;
  ``loss_normalizer`` still reads and writes as a float.
* opt-in bf16 autocast of the network at inference (``bf16_inference``; decoding, NMS and
  the conversion to seconds stay float32). Off by default: it changes the numbers.

Shapes: B videos, C channels, T time, F points over all levels, K classes.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from libs.utils.procedure import FAST, Procedure

from .assigner import label_points
from .attention import LocalMaskedMHCA
from .batching import batch_videos
from .construction import (IntOrList, TestSettings, TrainSettings, build_backbone,
                           check_max_seq_len, max_divisor, window_sizes)
from .decoding import inference_single_video, postprocess_video
from .heads import PtTransformerClsHead, PtTransformerRegHead
from .padding import check_padding_mode, minimal_padded_length, original_padded_length
from .point_losses import point_losses, updated_loss_normalizer
from .registry import META_ARCHS, make_generator, make_neck

__all__ = ["PtTransformer", "TrainSettings", "TestSettings", "batch_videos",
           "max_divisor"]  # the last four re-exported from construction.py / batching.py


@META_ARCHS.register("LocPointTransformer")
class PtTransformer(nn.Module):
    """ActionFormer: transformer backbone + pyramid + point heads for temporal localisation.

    The constructor takes the ``model`` section of the config (docs/reference.md §1.3):

    Args:
        backbone_type: 'convTransformer' | 'conv'.
        fpn_type: 'fpn' | 'identity'.
        backbone_arch: (#embedding convs, #stem blocks, #branch blocks).
        scale_factor: downsampling between pyramid levels.
        input_dim: feature channels (or a list for several concatenated feature types).
        max_seq_len: training length (grid steps).
        max_buffer_len_factor: point buffers cover ``max_seq_len * factor`` steps.
        n_head: attention heads.
        n_mha_win_size: local window per level (int for all) or <= 1 for global attention.
        embd_kernel_size, embd_dim, embd_with_ln: embedding convs.
        fpn_dim, fpn_with_ln, fpn_start_level: neck.
        head_dim, regression_range, head_num_layers, head_kernel_size, head_with_ln: heads;
            regression_range is (lo, hi) per level in grid units.
        use_abs_pe, use_rel_pe: position encodings.
        num_classes: K.
        train_cfg, test_cfg: the config sections of the same names. ``train_cfg.padding`` /
            ``test_cfg.padding`` ('minimal', the default, or 'original') select the padding
            rule of a training / inference ``forward``.
        procedure: optional :class:`libs.utils.procedure.Procedure` (new): which
            implementation every procedure-dependent layer uses (``FAITHFUL``: the
            original's arithmetic; default: ``FAST`` with the config's padding keys). See
            :meth:`apply_procedure`.

    Attributes that switch speed-ups (docs/performance.md):
        padding: 'minimal' | 'original' (inference through ``forward``).
        train_padding: 'minimal' | 'original' (training through ``forward``).
        bf16_inference: bool, False by default; bf16 autocast of the network at inference
            (``inference_amp_dtype`` = torch.bfloat16; float16 is possible there too).
        train_amp_dtype: None by default; torch.bfloat16 / float16 autocast of the network in
            training (the losses stay float32).
    """

    def __init__(self, backbone_type: str, fpn_type: str, backbone_arch: Sequence[int],
                 scale_factor: int, input_dim: IntOrList, max_seq_len: int,
                 max_buffer_len_factor: float, n_head: int, n_mha_win_size: IntOrList,
                 embd_kernel_size: int, embd_dim: IntOrList, embd_with_ln: bool,
                 fpn_dim: int, fpn_with_ln: bool, fpn_start_level: int, head_dim: int,
                 regression_range: Sequence[Sequence[float]], head_num_layers: int,
                 head_kernel_size: int, head_with_ln: bool, use_abs_pe: bool,
                 use_rel_pe: bool, num_classes: int, train_cfg: Mapping,
                 test_cfg: Mapping, procedure: Optional[Procedure] = None) -> None:
        super().__init__()
        self._set_pyramid(backbone_arch, scale_factor, fpn_start_level, regression_range,
                          n_mha_win_size, max_seq_len)
        self.num_classes = num_classes
        self.train_settings = TrainSettings.from_cfg(train_cfg)
        self.test_settings = TestSettings.from_cfg(test_cfg)
        self._set_speedups(train_cfg, test_cfg, backbone_arch, embd_kernel_size,
                           head_kernel_size, scale_factor, use_abs_pe, backbone_type)

        # submodules in the original's order (state_dict order, RNG order at init)
        self.backbone = build_backbone(
            backbone_type, input_dim, embd_dim, n_head, embd_kernel_size, max_seq_len,
            backbone_arch, self.mha_win_size, scale_factor, embd_with_ln, use_abs_pe,
            use_rel_pe, self.train_settings)
        if isinstance(embd_dim, (list, tuple)):
            embd_dim = sum(embd_dim)
        if fpn_type not in ("fpn", "identity"):
            raise ValueError(f"model.fpn_type must be 'fpn' or 'identity', got '{fpn_type}'")
        self.neck = make_neck(
            fpn_type, in_channels=[embd_dim] * (backbone_arch[-1] + 1), out_channel=fpn_dim,
            scale_factor=scale_factor, start_level=fpn_start_level, with_ln=fpn_with_ln)
        self.point_generator = make_generator(
            "point", max_seq_len=max_seq_len * max_buffer_len_factor,
            fpn_strides=self.fpn_strides, regression_range=self.reg_range)
        self.cls_head = PtTransformerClsHead(
            fpn_dim, head_dim, self.num_classes, kernel_size=head_kernel_size,
            prior_prob=self.train_settings.cls_prior_prob, with_ln=head_with_ln,
            num_layers=head_num_layers, empty_cls=self.train_settings.head_empty_cls)
        self.reg_head = PtTransformerRegHead(
            fpn_dim, head_dim, len(self.fpn_strides), kernel_size=head_kernel_size,
            num_layers=head_num_layers, with_ln=head_with_ln)

        # EMA of the number of positives, not checkpointed (§9 item 12); held as a float or
        # a float64 0-d tensor (updated without a host sync), read as a float
        self.loss_normalizer = self.train_settings.init_loss_norm
        self.loss_normalizer_momentum = 0.9
        # Optional callable summing the positive count over processes (set by the engine under
        # DDP, so that N processes x B videos normalise like one process x N*B videos).
        # None: the count of this process only, as the original.
        self.num_pos_reducer = None
        if procedure is None:
            procedure = FAST.replace(train_padding=self.train_padding,
                                     test_padding=self.padding)
        self.apply_procedure(procedure)

    def _set_pyramid(self, backbone_arch: Sequence[int], scale_factor: int,
                     fpn_start_level: int, regression_range: Sequence[Sequence[float]],
                     n_mha_win_size: IntOrList, max_seq_len: int) -> None:
        """Strides, regression ranges and windows of the levels; the length divisors."""
        self.fpn_strides = [scale_factor ** i
                            for i in range(fpn_start_level, backbone_arch[-1] + 1)]
        self.reg_range = regression_range
        if len(self.fpn_strides) != len(self.reg_range):
            raise ValueError(f"model.regression_range has {len(self.reg_range)} levels, the "
                             f"pyramid has {len(self.fpn_strides)}")
        self.scale_factor = scale_factor
        self.max_seq_len = max_seq_len
        self.mha_win_size = window_sizes(n_mha_win_size, 1 + backbone_arch[-1])
        self.max_div_factor = max_divisor(self.fpn_strides, self.mha_win_size)
        check_max_seq_len(max_seq_len, self.fpn_strides, self.mha_win_size)

    def _set_speedups(self, train_cfg: Mapping, test_cfg: Mapping, backbone_arch: Sequence[int],
                      embd_kernel_size: int, head_kernel_size: int, scale_factor: int,
                      use_abs_pe: bool, backbone_type: str) -> None:
        """The padding rules and switches of docs/performance.md, and what the minimal rule
        needs to know."""
        # training and inference pad minimally by default (exact, padding.py; the original
        # rule where it is not exact); train_cfg / test_cfg 'padding: original' switch back.
        # (The entry points enlarge the CPU conv library's kernel cache for the many lengths
        # this gives: libs/utils/procedure.configure_process.)
        self.padding = test_cfg.get("padding", "minimal")
        self.train_padding = train_cfg.get("padding", "minimal")
        self.batched_assignment = True
        self.scripted_losses = False
        self.inference_amp_dtype = None  # opt-in autocast at inference (bf16_inference)
        self.train_amp_dtype = None  # opt-in training autocast (train.py --amp, engine/amp.py)
        # what the minimal padding rule needs to know (padding.py): pyramid levels, how far
        # past a valid position any operator reads (kernel // 2 of the embedding and head
        # convs; 1 for the k=3 attention / FPN / ConvBlock convs; the strided conv and
        # max-pool of a level reach (stride + 1) // 2), and whether abs PE is stretched
        self._num_levels = backbone_arch[-1] + 1
        self._padding_reach = max(1, embd_kernel_size // 2, head_kernel_size // 2,
                                  (scale_factor + 1) // 2)
        self._uses_abs_pe = bool(use_abs_pe) and backbone_type == "convTransformer"

    def apply_procedure(self, procedure: Procedure) -> None:
        """Makes every procedure-dependent part follow ``procedure`` (libs/utils/procedure.py):
        padding rules, kernels of every layer, the local attention algorithm, fused or
        per-level heads, batched or per-video label assignment, eager or scripted losses.
        Only this model's attributes change (nothing process-wide)."""
        self.procedure = procedure
        self.train_padding = procedure.train_padding
        self.padding = procedure.test_padding
        self.batched_assignment = procedure.batched_assignment
        self.scripted_losses = procedure.scripted_losses
        for module in self.modules():
            if hasattr(type(module), "fast_kernels"):
                module.fast_kernels = procedure.fast_kernels
            if isinstance(module, LocalMaskedMHCA):
                module.attention_kernel = procedure.attention_kernel
        for head in (self.cls_head, self.reg_head):
            head.fuse_levels = procedure.fuse_head_levels

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def padding(self) -> str:
        """Padding rule of ``forward``: 'minimal' (exact, faster) or 'original'."""
        return self._padding

    @padding.setter
    def padding(self, mode: str) -> None:
        self._padding = check_padding_mode(mode)

    @property
    def train_padding(self) -> str:
        """Padding rule of a training ``forward``: 'minimal' (the default of the FAST procedure,
        libs/utils/procedure.py) or 'original' (the faithful procedure, or ``padding:
        original`` in train_cfg)."""
        return self._train_padding

    @train_padding.setter
    def train_padding(self, mode: str) -> None:
        self._train_padding = check_padding_mode(mode)

    @property
    def bf16_inference(self) -> bool:
        return self.inference_amp_dtype == torch.bfloat16

    @bf16_inference.setter
    def bf16_inference(self, enabled: bool) -> None:
        self.inference_amp_dtype = torch.bfloat16 if enabled else None

    @property
    def loss_normalizer(self) -> float:
        """EMA of the positive count (float; read back from the device only when asked)."""
        value = self._loss_normalizer
        return float(value.item()) if torch.is_tensor(value) else value

    @loss_normalizer.setter
    def loss_normalizer(self, value: float) -> None:
        self._loss_normalizer = float(value)

    # ------------------------------------------------------------------------- padding
    def _local_attention(self) -> List[LocalMaskedMHCA]:
        return [m for m in self.backbone.modules() if isinstance(m, LocalMaskedMHCA)]

    def _padding_divisor(self) -> int:
        """Every padded length is a multiple of this (the strided convs of the levels; the
        local attention accepts any length when its window check is off, see forward_features)."""
        return self.scale_factor ** (self._num_levels - 1)

    def _minimal_padding_is_exact(self, original_len: int) -> bool:
        """False where fewer padded positions would change the numbers (padding.py)."""
        if self.training:
            # dropout draws random numbers for every position, padded ones included
            return self.train_settings.dropout == 0
        if self.test_settings.pre_nms_thresh < 0:
            return False  # padded points (score 0) would pass the threshold
        # abs PE is stretched to the padded length once that reaches max_seq_len
        return not (self._uses_abs_pe and original_len > self.max_seq_len)

    def padded_length(self, lengths: Sequence[int], padding: str = "original") -> int:
        """Padded length of a batch of inputs with these valid lengths (current mode).

        Args:
            lengths: T_b of every video.
            padding: 'original' (docs/reference.md §3.10) or 'minimal' (the shortest length with the
                same valid outputs; the original length where no shorter one is exact).
        """
        longest = max(int(t) for t in lengths)
        original = original_padded_length(longest, self.max_seq_len, self.max_div_factor,
                                          self.training)
        if check_padding_mode(padding) == "original" or longest > original:
            return original  # (longer training inputs are rejected by batch_videos)
        if not self._minimal_padding_is_exact(original):
            return original
        return minimal_padded_length(lengths, original, self._num_levels, self.scale_factor,
                                     self._padding_divisor(), self._padding_reach)

    # ----------------------------------------------------------------------------- forward
    def preprocessing(self, video_list: Sequence[Mapping], padding_val: float = 0.0,
                      padding: str = "original") -> Tuple[torch.Tensor, torch.Tensor]:
        """Batches ``feats`` of the items: (B, C, T_pad) inputs, (B, 1, T_pad) masks.

        ``padding`` selects the rule ('original' by default, as the original's method).
        """
        feats = [item["feats"] for item in video_list]
        padded_len = None
        if padding != "original":
            padded_len = self.padded_length([f.shape[-1] for f in feats], padding)
        return batch_videos(feats, self.max_seq_len, self.max_div_factor, self.training,
                            padding_val, self.device, padded_len=padded_len)

    def forward_features(self, video_list: Sequence[Mapping], padding: str = "original"):
        """Network part of the forward pass.

        Args:
            video_list: items with ``feats`` (C, T).
            padding: 'original' (default: the original's tensors, shape for shape) or
                'minimal' (fewer padded positions, same values at every valid one).

        Returns:
            dict with ``points`` (per level (T_l, 4)), ``fpn_masks`` (per level (B, T_l) bool),
            ``cls_logits`` (per level (B, T_l, K)), ``offsets`` (per level (B, T_l, 2)).
        """
        batched_inputs, batched_masks = self.preprocessing(video_list, padding=padding)
        local_attention = self._local_attention() if padding != "original" else []
        # the window divisibility check of the original stays on for the original rule only
        for module in local_attention:
            module.check_length_divisible = False
        try:
            feats, masks = self.backbone(batched_inputs, batched_masks)
        finally:
            for module in local_attention:
                module.check_length_divisible = True
        fpn_feats, fpn_masks = self.neck(feats, masks)
        points = self.point_generator(fpn_feats)
        cls_logits = self.cls_head(fpn_feats, fpn_masks)
        offsets = self.reg_head(fpn_feats, fpn_masks)
        return {
            "points": points,
            "fpn_masks": [m.squeeze(1) for m in fpn_masks],
            "cls_logits": [x.permute(0, 2, 1) for x in cls_logits],
            "offsets": [x.permute(0, 2, 1) for x in offsets],
        }

    def forward(self, video_list: Sequence[Mapping]):
        """Training: returns ``{'cls_loss', 'reg_loss', 'final_loss'}``; evaluation: a list of
        per-video detections ``{'video_id', 'segments' (seconds), 'scores', 'labels'}``."""
        amp_dtype = self.train_amp_dtype if self.training else self.inference_amp_dtype
        use_bf16 = amp_dtype is not None
        with torch.autocast(self.device.type, dtype=amp_dtype or torch.bfloat16,
                            enabled=use_bf16):
            padding = self.train_padding if self.training else self.padding
            out = self.forward_features(video_list, padding=padding)
        if use_bf16:
            # decoding, NMS and the conversion to seconds in float32
            out["cls_logits"] = [x.float() for x in out["cls_logits"]]
            out["offsets"] = [x.float() for x in out["offsets"]]
        if self.training:
            if "segments" not in video_list[0] or "labels" not in video_list[0]:
                raise ValueError("training items need 'segments' and 'labels'")
            gt_segments = [item["segments"].to(self.device) for item in video_list]
            gt_labels = [item["labels"].to(self.device) for item in video_list]
            gt_cls_labels, gt_offsets = self.label_points(out["points"], gt_segments,
                                                          gt_labels)
            return self.losses(out["fpn_masks"], out["cls_logits"], out["offsets"],
                               gt_cls_labels, gt_offsets)
        return self.inference(video_list, out["points"], out["fpn_masks"],
                              out["cls_logits"], out["offsets"])

    # -------------------------------------------------------------------------- training
    def label_points(self, points: Sequence[torch.Tensor], gt_segments: Sequence[torch.Tensor],
                     gt_labels: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Targets (B, F, K) and (B, F, 2) for the concatenated points (see assigner.py);
        video by video when ``batched_assignment`` is off (the original's loop)."""
        settings = (self.num_classes, self.train_settings.center_sample,
                    self.train_settings.center_sample_radius)
        if self.batched_assignment:
            return label_points(points, gt_segments, gt_labels, *settings)
        outs = [label_points(points, [seg], [lab], *settings)
                for seg, lab in zip(gt_segments, gt_labels)]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def losses(self, fpn_masks: Sequence[torch.Tensor], out_cls_logits: Sequence[torch.Tensor],
               out_offsets: Sequence[torch.Tensor], gt_cls_labels: torch.Tensor,
               gt_offsets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Focal + DIoU losses normalised by the EMA of the positive count (docs/reference.md §4.2).

        Args:
            fpn_masks: per level (B, T_l) bool.
            out_cls_logits: per level (B, T_l, K).
            out_offsets: per level (B, T_l, 2).
            gt_cls_labels: (B, F, K) (or a list of (F, K)).
            gt_offsets: (B, F, 2) (or a list of (F, 2)).

        Updates ``loss_normalizer`` before using it; with ``num_pos_reducer`` set (DDP), the
        update uses the positive count summed over processes. Without it the update stays on
        the device (float64 0-d tensor: the same arithmetic as the original's Python floats),
        so a training step does not wait for the positive count.
        """
        valid_mask = torch.cat(list(fpn_masks), dim=1)                 # (B, F)
        gt_cls = torch.stack(list(gt_cls_labels))                       # (B, F, K)
        pos_mask = torch.logical_and(gt_cls.sum(-1) > 0, valid_mask)
        pred_offsets = torch.cat(list(out_offsets), dim=1)[pos_mask]
        gt_offsets = torch.stack(list(gt_offsets))[pos_mask]
        self._update_loss_normalizer(pos_mask.sum())
        settings = self.train_settings
        return point_losses(torch.cat(list(out_cls_logits), dim=1)[valid_mask],
                            gt_cls[valid_mask], pred_offsets, gt_offsets,
                            self._loss_normalizer, self.num_classes, settings.label_smoothing,
                            settings.loss_weight, self.scripted_losses)

    def _update_loss_normalizer(self, num_pos: torch.Tensor) -> None:
        """``norm <- 0.9 * norm + 0.1 * max(num_pos, 1)`` (docs/reference.md §4.2 step 2; see
        point_losses.updated_loss_normalizer)."""
        self._loss_normalizer = updated_loss_normalizer(
            self._loss_normalizer, num_pos, self.loss_normalizer_momentum,
            self.num_pos_reducer, self.scripted_losses)

    # ------------------------------------------------------------------------- inference
    @torch.no_grad()
    def inference(self, video_list: Sequence[Mapping], points: Sequence[torch.Tensor],
                  fpn_masks: Sequence[torch.Tensor], out_cls_logits: Sequence[torch.Tensor],
                  out_offsets: Sequence[torch.Tensor]) -> List[Dict]:
        """Decodes every video, then NMS and conversion to seconds (docs/reference.md §5)."""
        settings = self.test_settings
        results = []
        for idx, item in enumerate(video_list):
            result = inference_single_video(
                points, [m[idx] for m in fpn_masks], [x[idx] for x in out_cls_logits],
                [x[idx] for x in out_offsets], settings.pre_nms_thresh,
                settings.pre_nms_topk, settings.duration_thresh)
            for key in ("video_id", "fps", "duration", "feat_stride", "feat_num_frames"):
                result[key] = item[key]
            results.append(result)
        return [self.postprocessing(result) for result in results]

    def postprocessing(self, result: Mapping) -> Dict:
        """NMS + grid -> seconds for one decoded video (see decoding.postprocess_video)."""
        s = self.test_settings
        return postprocess_video(result, s.nms_method, s.iou_threshold, s.min_score,
                                 s.max_seg_num, s.multiclass_nms, s.nms_sigma,
                                 s.voting_thresh)
