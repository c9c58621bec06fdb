"""PANDA end to end: meta-training, the proximal step, policy files, the strategy, the CLI."""

import numpy as np
import pytest
import torch

from fairal.cli import main
from fairal.datasets import load_adult, load_compas, panda_split
from fairal.labeling import LabelingSession
from fairal.metrics import soft_demographic_parity
from fairal.panda import SetTransformerPolicy, relaxed_top_b, sample_gumbel
from fairal.panda.inner import head_logits, init_head, train_head
from fairal.panda.representation import pretrain_representation
from fairal.panda.strategy import DEFAULT_POLICY, PolicyMismatchError
from fairal.panda.train import MetaConfig, load_trained_policy, meta_train, proximal_step, save_trained_policy
from fairal.projects import ProjectSettings, create_project
from fairal.store import Store
from fairal.strategies import PoolExhaustedError, make_strategy

TINY = MetaConfig(budget=30, pool_size=300, validation_size=300, n_initial=10, inner_steps=20, width=16,
                  layers=1, heads=2, iterations=4, eval_every=2, eval_tasks=2, seed=0)


@pytest.fixture(scope="module")
def compas_policy(tmp_path_factory):
    compas = load_compas()
    split = panda_split(len(compas), seed=0)
    D0 = split.meta_train
    representation = pretrain_representation(compas.X[D0], compas.y[D0], hidden=(16, 8), epochs=2)
    result = meta_train(representation.transform(compas.X[D0]), compas.y[D0], compas.group_codes[D0],
                        len(compas.group_names), config=TINY)
    path = tmp_path_factory.mktemp("policy") / "compas.pt"
    save_trained_policy(path, result, representation, config=TINY, group_names=compas.group_names,
                        dataset="compas", sensitive="race", split_seed=0)
    return compas, split, result, path


def test_meta_training_records_history_and_keeps_a_checked_policy(compas_policy):
    _, _, result, _ = compas_policy
    assert list(result.history["iteration"]) == [1, 2, 3, 4]
    assert result.history["eval_f1"].notna().sum() == 2  # evaluated every 2 iterations
    assert result.best["iteration"] in (2, 4)
    assert 0.0 <= result.best["eval_disparity"] <= 1.0 and "random_eval_f1" in result.best
    assert (result.history["temperature"] <= TINY.max_temperature + 1e-6).all()


def test_policy_file_round_trip(compas_policy):
    compas, _, result, path = compas_policy
    trained = load_trained_policy(path, device="cpu")
    assert trained.group_names == list(compas.group_names)
    x = torch.randn(50, result.policy.config["n_features"])
    torch.testing.assert_close(trained.policy(x), result.policy.cpu()(x))
    assert trained.representation.transform(compas.X[:5]).shape == (5, 8)


def test_panda_strategy_picks_distinct_unlabeled_items(compas_policy):
    compas, split, _, path = compas_policy
    strategy = make_strategy("panda", policy_path=path, random_state=3)
    chosen = strategy.query(None, compas.X, split.pool, n=40, groups=compas.group)
    assert len(set(chosen)) == 40 and set(chosen) <= set(split.pool)
    again = make_strategy("panda", policy_path=path, random_state=3).query(None, compas.X, split.pool, n=40,
                                                                          groups=compas.group)
    np.testing.assert_array_equal(chosen, again)  # one seeded Gumbel draw
    with pytest.raises(PoolExhaustedError):
        strategy.query(None, compas.X, split.pool[:5], n=10, groups=compas.group)


def test_panda_refuses_data_it_was_not_trained_for(compas_policy):
    compas, split, _, path = compas_policy
    strategy = make_strategy("panda", policy_path=path)
    with pytest.raises(PolicyMismatchError, match="trained for groups"):
        strategy.query(None, compas.X, split.pool, n=5, groups=np.full(len(compas), "Martian", dtype=object))
    with pytest.raises(PolicyMismatchError, match="input features"):
        strategy.query(None, compas.X[:, :3], split.pool, n=5, groups=compas.group)


def test_proximal_step_lowers_disparity_when_the_constraint_is_violated():
    compas = load_compas()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(compas))
    pool, val = order[:300], order[300:800]
    X = torch.tensor(compas.X)
    y = torch.tensor(compas.y, dtype=torch.float32)
    groups = torch.tensor(compas.group_codes)
    torch.manual_seed(0)
    policy = SetTransformerPolicy(X.shape[1], width=16, layers=1, heads=2, temperature=0.3)
    gumbel = sample_gumbel((300,), generator=torch.Generator().manual_seed(1))

    def disparity():
        weights = relaxed_top_b(policy(X[pool]), 40, temperature=0.3, gumbel=gumbel)
        params = train_head(init_head(X.shape[1]), X[pool], y[pool], weights, steps=30, lr=0.5)
        probs = torch.sigmoid(head_logits(params, X[val]))
        return soft_demographic_parity(probs, groups[val], method="to_overall")

    before = float(disparity().detach())
    taken = proximal_step(policy, disparity, rho=0.0, step_size=0.2, steps=5)
    after = float(disparity().detach())
    assert taken == 5 and after < before


def test_proximal_step_does_nothing_when_the_constraint_holds():
    policy = SetTransformerPolicy(3, width=8, layers=1, heads=2)
    before = [p.detach().clone() for p in policy.parameters()]
    x = torch.randn(20, 3)
    taken = proximal_step(policy, lambda: policy(x).sigmoid().mean() * 0.0, rho=0.04, step_size=1.0, steps=3)
    assert taken == 0
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_meta_training_rejects_tasks_larger_than_the_data():
    with pytest.raises(ValueError, match="a task needs"):
        meta_train(np.zeros((100, 3), np.float32), np.zeros(100, int), np.zeros(100, int), 2, config=TINY)


def test_shipped_adult_policy_ranks_the_whole_pool():
    adult = load_adult()
    split = panda_split(len(adult), seed=0)
    strategy = make_strategy("panda", random_state=0)
    order, scores = strategy.rank(None, adult.X, split.pool, groups=adult.group)
    assert DEFAULT_POLICY.exists()
    np.testing.assert_array_equal(np.sort(order), np.sort(split.pool))
    assert scores.shape == (len(split.pool),) and np.all(np.diff(scores) <= 0)


def test_panda_project_in_the_app_library():
    with Store(memory=True) as store:
        project_id = create_project(store, ProjectSettings(name="panda", strategy="panda", budget=20))
        session = LabelingSession(store, project_id, "ann")
        item = session.next_item()
        assert item.rank == 0
        session.submit(item.item_id, 1)
        assert session.next_item().rank == 1  # PANDA's ranking is fixed per draw


def test_train_policy_command(tmp_path, capsys):
    out = tmp_path / "policy.pt"
    code = main(["train-policy", "--dataset", "compas", "--iterations", "2", "--eval-every", "1",
                 "--pool-size", "300", "--validation-size", "300", "--budget", "30", "--n-initial", "10",
                 "--width", "16", "--layers", "1", "--heads", "2", "--eval-tasks", "1", "--out", str(out)])
    assert code == 0 and out.exists() and out.with_suffix(".history.csv").exists()
    assert load_trained_policy(out).metadata["dataset"] == "compas"
