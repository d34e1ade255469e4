"""make_data_loader: list batches, training settings, no workers, workers, DistributedSampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

from libs.datasets import make_data_loader, make_dataset, trivial_batch_collator
from libs.datasets import worker_init_reset_seed

from ._helpers import ds_kwargs, video, write_json


@pytest.fixture
def six_videos(tmp_path):
    (tmp_path / "feats").mkdir()
    db = {f"v{i}": video(subset="Validation", acts=((1.0, 3.0 + i, "a", 0),)) for i in range(6)}
    write_json(tmp_path / "ann.json", db)
    for i in range(6):
        np.save(tmp_path / "feats" / f"v{i}.npy", np.full((100 + i, 8), i, np.float32))
    return make_dataset("thumos", True, ["validation"], **ds_kwargs(
        tmp_path, num_classes=1, max_seq_len=64, crop_ratio=[0.9, 1.0]))


def test_training_loader_without_workers(six_videos):
    gen = torch.Generator().manual_seed(0)
    loader = make_data_loader(six_videos, True, gen, batch_size=4, num_workers=0)
    assert isinstance(loader.sampler, RandomSampler) and loader.drop_last
    assert loader.collate_fn is trivial_batch_collator
    assert loader.worker_init_fn is worker_init_reset_seed
    batches = list(loader)
    assert len(batches) == 1 and isinstance(batches[0], list) and len(batches[0]) == 4
    assert all(isinstance(b, dict) and b["feats"].shape[1] == 64 for b in batches[0])
    # the order follows the generator: same seed, same order
    ids = [b["video_id"] for b in batches[0]]
    again = make_data_loader(six_videos, True, torch.Generator().manual_seed(0), 4, 0)
    assert [b["video_id"] for b in next(iter(again))] == ids


def test_eval_loader_keeps_order_and_every_video(six_videos):
    loader = make_data_loader(six_videos, False, None, 1, 0)
    assert isinstance(loader.sampler, SequentialSampler) and not loader.drop_last
    assert loader.worker_init_fn is None
    assert [b[0]["video_id"] for b in loader] == [f"v{i}" for i in range(6)]


def test_workers_are_persistent_and_seeded(six_videos):
    loader = make_data_loader(six_videos, True, torch.Generator().manual_seed(1), 2, 1)
    assert loader.persistent_workers
    first = [[b["feats"].shape[1] for b in batch] for batch in loader]
    # same generator seed -> same worker seed -> same random crops
    loader2 = make_data_loader(six_videos, True, torch.Generator().manual_seed(1), 2, 1)
    assert [[b["feats"].shape[1] for b in batch] for batch in loader2] == first
    assert len(first) == 3


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_distributed_sampler_seeded_from_the_generator(six_videos, process_group):
    gen = torch.Generator().manual_seed(1234567891)
    state = gen.get_state()
    loader = make_data_loader(six_videos, True, gen, 2, 0, distributed=True)
    assert torch.equal(gen.get_state(), state)  # the generator's state is not consumed
    sampler = loader.sampler
    assert isinstance(sampler, DistributedSampler)
    assert sampler.shuffle and sampler.drop_last and sampler.seed == 1234567891
    # set_epoch changes the permutation (the caller's job every epoch)
    sampler.set_epoch(0)
    order0 = list(sampler)
    sampler.set_epoch(1)
    assert sorted(list(sampler)) == sorted(order0) == list(range(6))
    assert list(sampler) != order0
    assert len(list(loader)) == 3
    eval_loader = make_data_loader(six_videos, False, None, 1, 0, distributed=True)
    assert not eval_loader.sampler.shuffle and list(eval_loader.sampler) == list(range(6))


def test_distributed_and_sampler_are_exclusive(six_videos):
    with pytest.raises(ValueError, match="either distributed=True or a sampler"):
        make_data_loader(six_videos, True, None, 2, 0, distributed=True,
                         sampler=SequentialSampler(six_videos))
