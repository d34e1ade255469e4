"""Dataset registry, ``make_dataset`` and ``make_data_loader`` (REFERENCE.md §2.1, §2.8).

Registered names (frozen): ``thumos``, ``anet``, ``epic``, ``ego4d``.

``make_data_loader`` keeps the original's settings (list-of-dicts batches, worker seeding,
shuffle and ``drop_last`` when training, the caller's generator) and adds what the original
could not do: ``num_workers=0`` (``persistent_workers`` only with workers) and a
``DistributedSampler`` under torchrun (``distributed=True``; the caller calls
``loader.sampler.set_epoch(epoch)`` every epoch).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from libs.utils import Registry

from .data_utils import trivial_batch_collator, worker_init_reset_seed

__all__ = ["DATASETS", "register_dataset", "make_dataset", "make_data_loader"]

DATASETS = Registry("dataset")


def register_dataset(name: str):
    """Class decorator registering a dataset class under ``name``."""
    return DATASETS.register(name)


def make_dataset(name: str, is_training: bool, split, **kwargs: Any) -> Dataset:
    """Builds the dataset registered as ``name`` with ``cfg['dataset']`` as keyword arguments."""
    return DATASETS.get(name)(is_training, split, **kwargs)


def make_data_loader(dataset: Dataset, is_training: bool,
                     generator: Optional[torch.Generator], batch_size: int, num_workers: int,
                     distributed: bool = False) -> DataLoader:
    """A DataLoader as the original builds it.

    Args:
        dataset: any map-style dataset of item dicts (a ``Subset`` works too).
        is_training: shuffle, drop the last partial batch, seed the workers.
        generator: RNG of the shuffling (train.py passes the seeded global generator).
        batch_size: videos per batch (per process under DDP).
        num_workers: loader processes; 0 loads in the main process.
        distributed: shard with a ``DistributedSampler`` (shuffled when training, with a seed
            drawn from ``generator`` so every process draws the same permutation).
    """
    sampler = None
    shuffle = is_training
    if distributed:
        seed = 0
        if generator is not None:
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator).item())
        sampler = DistributedSampler(dataset, shuffle=is_training, seed=seed,
                                     drop_last=is_training)
        shuffle = False
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=worker_init_reset_seed if is_training else None,
        shuffle=shuffle,
        sampler=sampler,
        drop_last=is_training,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
