"""Dataset registry, ``make_dataset`` and ``make_data_loader`` (docs/reference.md §2.1, §2.8).

Registered names (frozen): ``thumos``, ``anet``, ``epic``, ``ego4d``.

``make_data_loader`` keeps the original's settings (list-of-dicts batches, worker seeding,
shuffle and ``drop_last`` when training, the caller's generator) and adds what the original
could not do (docs/reference.md §9 item 5): ``num_workers=0`` (``persistent_workers`` only with
workers), and sharding under torchrun (``distributed=True`` builds a ``DistributedSampler``;
``sampler=`` takes any other sampler).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from libs.utils import Registry

from .data_utils import trivial_batch_collator, worker_init_reset_seed

__all__ = ["DATASETS", "register_dataset", "make_dataset", "make_data_loader"]

DATASETS = Registry("dataset")


def register_dataset(name: str):
    """Class decorator registering a dataset class under ``name``."""
    return DATASETS.register(name)


def make_dataset(name: str, is_training: bool, split, **kwargs: Any) -> Dataset:
    """Builds the dataset registered as ``name``; the scripts pass ``**cfg['dataset']``.

    Raises:
        KeyError: unknown ``name`` (the message lists the registered names).
    """
    return DATASETS.get(name)(is_training, split, **kwargs)


def make_data_loader(dataset: Dataset, is_training: bool,
                     generator: Optional[torch.Generator], batch_size: int, num_workers: int,
                     distributed: bool = False,
                     sampler: Optional[Sampler] = None) -> DataLoader:
    """A DataLoader as the original builds it, usable without workers and under torchrun.

    Batches are Python lists of item dicts (``trivial_batch_collator``). When training, the
    order is shuffled with ``generator``, the last partial batch is dropped and every worker
    re-seeds NumPy / Python ``random`` from its torch seed (``worker_init_reset_seed``), so
    the random crops of ``truncate_feats`` are reproducible.

    Args:
        dataset: any map-style dataset of item dicts (a ``Subset`` works too).
        is_training: shuffle, drop the last partial batch, seed the workers.
        generator: RNG of the shuffling and of the workers' base seed (train.py passes the
            seeded global generator); None for evaluation.
        batch_size: videos per batch (per process under DDP).
        num_workers: loader processes; 0 loads in the main process.
        distributed: shard with a ``DistributedSampler`` (needs an initialised process
            group). When training it shuffles with ``seed = generator.initial_seed()`` (the
            generator's state is not consumed, so the model initialisation that follows is
            the same as in a single-process run) and drops the tail so every process gets
            the same number of batches. The caller must call
            ``loader.sampler.set_epoch(epoch)`` before every epoch, or every epoch repeats
            the first epoch's order.
        sampler: a sampler to use instead (then ``shuffle`` is left to it); exclusive with
            ``distributed``.

    Returns:
        The ``torch.utils.data.DataLoader``.
    """
    if distributed and sampler is not None:
        raise ValueError("make_data_loader: pass either distributed=True or a sampler, "
                         "not both")
    if distributed:
        # same on every rank (each seeds its generator from the config); kept in int64 range
        seed = generator.initial_seed() % 2 ** 62 if generator is not None else 0
        sampler = DistributedSampler(dataset, shuffle=is_training, seed=seed,
                                     drop_last=is_training)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=worker_init_reset_seed if is_training else None,
        shuffle=is_training if sampler is None else False,
        sampler=sampler,
        drop_last=is_training,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
