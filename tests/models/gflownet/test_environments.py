"""GFlowNet environments against closed forms and brute-force enumeration, and the
eager errors for invalid masks and non-positive rewards."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import probkit.models.gflownet as gflownet
import pytest


def test_hypergrid_reward_and_partition_function_by_hand():
    # D = 2, H = 8: a_d = |s/7 - 1/2| > 0.25 for s in {0, 1, 6, 7}, and 0.3 < a_d < 0.4
    # for s in {1, 6}: 64 states x 0.1 + 16 x 0.5 + 4 x 2.0 = 22.4.
    env = gflownet.HyperGrid(ndim=2, height=8)
    assert float(env.log_partition()) == pytest.approx(math.log(22.4), rel=1e-6)
    reward = lambda s: float(jnp.exp(env.log_reward(jnp.array(s))))
    assert reward([1, 6]) == pytest.approx(2.6)
    assert reward([0, 7]) == pytest.approx(0.6)
    assert reward([3, 1]) == pytest.approx(0.1)
    assert np.flatnonzero(np.asarray(gflownet.modes(env))).tolist() == [9, 14, 49, 54]
    assert env.max_length == 15 and env.num_actions == 3


def test_hypergrid_thresholds_are_exact_on_the_boundary():
    # H = 16: a = 0.3 exactly at s = 3 and s = 12, which is NOT in the band 0.3 < a < 0.4;
    # the modes are the 2 x 2 products of {2, 13} (as drawn in torchgfn's hypergrid.py).
    env = gflownet.HyperGrid(ndim=2, height=16)
    modes = np.asarray(env.all_states())[np.asarray(gflownet.modes(env))]
    assert modes.tolist() == [[2, 2], [2, 13], [13, 2], [13, 13]]
    assert float(jnp.exp(env.log_reward(jnp.array([12, 12])))) == pytest.approx(0.6)


def test_hypergrid_enumeration_and_features():
    env = gflownet.HyperGrid(ndim=3, height=4)
    states = env.all_states()
    assert states.shape == (64, 3)
    np.testing.assert_array_equal(jax.vmap(env.state_index)(states), np.arange(64))
    features = env.features(jnp.array([0, 3, 1]))
    np.testing.assert_array_equal(np.flatnonzero(features), [0, 7, 9])
    target = np.asarray(gflownet.exact_target(env))
    rewards = np.exp(np.asarray(jax.vmap(env.log_reward)(states)))
    np.testing.assert_allclose(target, rewards / rewards.sum(), rtol=1e-5)


def test_set_building_partition_function_by_brute_force():
    energies = np.array([0.3, -0.2, 1.1, 0.0, 0.7, 2.0])
    env = gflownet.SetBuilding(energies, size=3)
    brute = sum(math.exp(-sum(energies[list(c)])) for c in itertools.combinations(range(6), 3))
    assert float(env.log_partition()) == pytest.approx(math.log(brute), rel=1e-5)
    target = np.asarray(gflownet.exact_target(env))
    assert target.sum() == pytest.approx(1.0, abs=1e-6)
    sizes = np.asarray(env.all_states()).sum(1)
    assert target[sizes != 3].sum() == 0.0
    state = jnp.array([1, 0, 1, 0, 0, 0])
    assert float(env.energy(state)) == pytest.approx(1.4)
    assert np.asarray(env.forward_mask(state)).tolist() == [0, 1, 0, 1, 1, 1, 0]


class _StuckGrid(gflownet.HyperGrid):
    """The far corner has no valid action (stop forbidden there)."""

    def forward_mask(self, state):
        mask = super().forward_mask(state)
        return mask.at[-1].set(~jnp.all(state == self.height - 1))


class _ZeroRewardGrid(gflownet.HyperGrid):
    """R = 0 on the diagonal."""

    def log_reward(self, state):
        return jnp.where(state[0] == state[1], -jnp.inf, super().log_reward(state))


def test_invalid_masks_and_rewards_are_rejected_before_training():
    with pytest.raises(ValueError, match="forward_mask allows no action"):
        gflownet.check_environment(_StuckGrid(ndim=2, height=3))
    with pytest.raises(ValueError, match="rewards must be > 0"):
        gflownet.check_environment(_ZeroRewardGrid(ndim=2, height=3))
    with pytest.raises(ValueError, match="rewards must be > 0"):
        gflownet.fit(_ZeroRewardGrid(ndim=2, height=3), num_trajectories=8, batch_size=8)
    with pytest.raises(ValueError, match="R0 must be > 0"):
        gflownet.HyperGrid(ndim=2, height=8, R0=0.0)
    with pytest.raises(ValueError, match="energies must be finite"):
        gflownet.SetBuilding(np.array([0.0, np.inf]), size=1)
    with pytest.raises(ValueError, match="size must be"):
        gflownet.SetBuilding(np.zeros(3), size=4)
    with pytest.raises(TypeError, match="Environment"):
        gflownet.check_environment("grid")


class _Unenumerated(gflownet.HyperGrid):
    def all_states(self):
        return None


class _UnenumeratedStuck(_StuckGrid):
    def all_states(self):
        return None


class _TooShort(_Unenumerated):
    def __init__(self):
        super().__init__(ndim=2, height=8)
        self.max_length = 3


def test_environments_without_enumeration_are_checked_by_random_rollouts():
    gflownet.check_environment(_Unenumerated(ndim=2, height=8))
    with pytest.raises(ValueError, match="no action at a state reached"):
        gflownet.check_environment(_UnenumeratedStuck(ndim=2, height=3))
    with pytest.raises(ValueError, match="raise max_length"):
        gflownet.check_environment(_TooShort())


def test_large_hypergrid_is_not_enumerated_and_log_z_has_its_closed_form():
    # 16^12 = 2.8e14 states: all_states() declines at once instead of filling memory;
    # log Z = log(R0 H^D + R1 c1^D + R2 c2^D) with c1 = 8 (s in 0..3, 12..15) and c2 = 2
    # (s in {2, 13}) for H = 16: an answer computed here by hand, not by the code.
    env = gflownet.HyperGrid(ndim=12, height=16)
    assert env.all_states() is None
    expected = math.log(0.1 * 16.0**12 + 0.5 * 8.0**12 + 2.0 * 2.0**12)
    assert float(env.log_partition()) == pytest.approx(expected, rel=1e-6)
    policy = gflownet.Policy(env, key=jax.random.key(0), width=8, depth=1)
    with pytest.raises(ValueError, match=r"2\.81e\+14 states.*importance_samples"):
        gflownet.terminal_distribution(policy, env)
    with pytest.raises(ValueError, match="exact evaluation"):
        gflownet.exact_target(env)
    # Small grids keep their enumeration, and the closed form agrees with it.
    small = gflownet.HyperGrid(ndim=3, height=5)
    brute = jax.nn.logsumexp(jax.vmap(small.log_reward)(small.all_states()))
    assert float(small.log_partition()) == pytest.approx(float(brute), rel=1e-6)


def test_training_works_on_a_grid_too_large_to_enumerate():
    # 2^19 = 524,288 states, above MAX_ENUMERATED_STATES, with short trajectories (length
    # 20) so that the test compiles fast; numpy integers are accepted as sizes.
    env = gflownet.HyperGrid(ndim=np.int64(19), height=np.int64(2))
    assert env.num_states > gflownet.MAX_ENUMERATED_STATES and env.all_states() is None
    gfn = gflownet.fit(env, num_trajectories=np.int64(16), batch_size=8, width=8, depth=1)
    assert gfn.history.loss.shape == (2,) and np.all(np.isfinite(gfn.history.loss))
    assert gfn.history.l1.shape == (0,)
    samples = gflownet.importance_samples(jax.random.key(1), gfn.policy, env, 8)
    assert samples.positions.shape == (8, 19)


@pytest.mark.slow
def test_training_works_on_the_12_by_16_hypergrid():
    # The size of the report (ndim 12, height 16): training used to enumerate 16^12 states.
    env = gflownet.HyperGrid(ndim=12, height=16)
    gfn = gflownet.fit(env, num_trajectories=8, batch_size=8, width=8, depth=1)
    assert gfn.history.loss.shape == (1,) and np.all(np.isfinite(gfn.history.loss))
