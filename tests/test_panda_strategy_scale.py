"""PANDA on large pools: random-block attention, the automatic encoder choice, bf16 only on CUDA."""

import numpy as np
import pytest
import torch

from fairal.datasets import load
from fairal.panda.policy import SetTransformerPolicy, block_logits
from fairal.panda.strategy import AUTO_BLOCKS_ABOVE, SHIPPED_POLICIES, PandaSampling, encoder_dtype
from fairal.trainers.device import default_device

ISAB = SHIPPED_POLICIES / "alternatives" / "panda-adult-sex-isab32.pt"


@pytest.fixture(scope="module")
def adult():
    return load("adult", sensitive="sex")


def _policy(seed=0):
    torch.manual_seed(seed)
    return SetTransformerPolicy(5, width=8, heads=2, layers=2).eval()


def test_block_logits_score_each_item_within_its_seeded_block():
    policy, x = _policy(), torch.randn(103, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = block_logits(policy, x, block_size=25, seed=7)
        # 103 items, blocks of at most 25 -> 5 blocks: 3 of 21 and 2 of 20, cut from the seeded permutation
        order = torch.randperm(103, generator=torch.Generator().manual_seed(7))
        starts = [0, 21, 42, 63, 83, 103]
        for a, b in zip(starts, starts[1:]):
            block = order[a:b]
            torch.testing.assert_close(got[block], policy(x[block]), atol=1e-5, rtol=1e-5)
        # the full-attention logits differ (context matters), and another seed gives another partition
        assert not torch.allclose(got, policy(x), atol=1e-4)
        assert not torch.allclose(got, block_logits(policy, x, block_size=25, seed=8), atol=1e-4)


def test_block_logits_batches_blocks_and_equals_full_attention_for_small_pools():
    policy, x = _policy(), torch.randn(60, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(block_logits(policy, x, block_size=60), policy(x))
        shapes = []
        handle = policy.input.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(inp[0].shape)))
        block_logits(policy, x, block_size=10, seed=0, max_batch_items=30)
        handle.remove()
    assert shapes == [(3, 10, 5), (3, 10, 5)]  # never the whole pool at once: 3 blocks of 10 per batch
    with pytest.raises(ValueError, match="block_size"):
        block_logits(policy, x, block_size=0)


def _resampled(adult, n, seed=0):
    rows = np.random.default_rng(seed).integers(0, len(adult), size=n)
    return adult.X[rows], adult.group[rows]


def test_auto_keeps_full_attention_up_to_the_threshold_and_uses_blocks_above(adult):
    strategy = PandaSampling(random_state=0)
    small, large = strategy.encoder(11_306), strategy.encoder(AUTO_BLOCKS_ABOVE + 1)
    assert (small.scheme, small.block_size) == ("full", None)
    trained_pool = strategy.trained_policy().metadata["config"]["pool_size"]
    assert (large.scheme, large.block_size) == ("blocks", trained_pool)
    number_format = "bfloat16 on cuda" if torch.cuda.is_available() else "float32 on cpu"
    assert "random blocks of 2,000 items" in large.describe() and number_format in large.describe()
    assert PandaSampling(context="full").encoder(10**6).scheme == "full"
    assert PandaSampling(context="blocks", block_size=500).encoder(11_306).block_size == 500
    isab = PandaSampling(policy_path=ISAB)
    assert isab.encoder(10**6).scheme == "isab" and "induced" in isab.describe(10**6)


def test_auto_ranks_a_large_pool_in_blocks_and_says_so(adult):
    X, groups = _resampled(adult, 4 * (AUTO_BLOCKS_ABOVE + 500))
    pool = np.arange(0, len(X), 4)
    strategy = PandaSampling(random_state=3)
    ranking = strategy.rank(None, X, pool, groups=groups)
    assert sorted(ranking.order.tolist()) == pool.tolist()
    assert strategy.last_encoder.scheme == "blocks" and strategy.describe() == strategy.last_encoder.describe()
    again = PandaSampling(random_state=3).rank(None, X, pool, groups=groups)
    np.testing.assert_array_equal(ranking.order, again.order)  # seeded partition: reproducible


def test_auto_is_unchanged_full_attention_on_the_adult_pool(adult):
    pool = np.arange(0, len(adult), 4)
    auto = PandaSampling(random_state=1).rank(None, adult.X, pool, groups=adult.group)
    full = PandaSampling(random_state=1, context="full").rank(None, adult.X, pool, groups=adult.group)
    np.testing.assert_array_equal(auto.order, full.order)


def test_bf16_is_chosen_on_cuda_only():
    assert encoder_dtype(torch.device("cuda")) == torch.bfloat16
    assert encoder_dtype(torch.device("cpu")) == torch.float32
    assert encoder_dtype(torch.device("cuda"), "fp32") == torch.float32
    assert encoder_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        encoder_dtype(torch.device("cpu"), "fp16")
    with pytest.raises(ValueError, match="precision"):
        PandaSampling(precision="half")
    with pytest.raises(ValueError, match="context"):
        PandaSampling(context="sparse")
    # here the policy lives where default_device() says: on a machine without CUDA, float32 on the CPU
    expected = "bfloat16" if default_device().type == "cuda" else "float32"
    assert PandaSampling().encoder(100).dtype == expected


def test_default_device_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv("FAIRAL_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device().type == "cuda"
    monkeypatch.setenv("FAIRAL_DEVICE", "cpu")
    assert default_device().type == "cpu"


def test_bf16_ranking_runs_and_keeps_most_picks(adult):
    pool = np.arange(0, len(adult), 4)
    fp32 = PandaSampling(random_state=0, context="full").rank(None, adult.X, pool, groups=adult.group).order[:400]
    bf16 = PandaSampling(random_state=0, context="full", precision="bf16").rank(
        None, adult.X, pool, groups=adult.group).order[:400]
    assert len(np.intersect1d(fp32, bf16)) >= 0.9 * 400
