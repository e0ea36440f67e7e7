"""PV-RNN: learn a noisy rhythm, then recognise and predict a new sequence online.

Twelve training sequences are sines of period 20 with a random phase whose noise level
switches with the phase (0.3 on the rising half-cycle, 0.02 on the falling one). A
one-layer PV-RNN (Ahmadi and Tani, 2019) learns them by the ELBO with meta-prior w = 1.
On a held-out sequence, error regression over a sliding window of 10 steps recognises
the phase and predicts one step ahead; the free-running prior alone cannot know the
phase. The figure shows the predictions, and the network's expected noise (its prior's
latent std) against the true noise level.

    python examples/pvrnn_online_prediction.py [--out pvrnn_online_prediction.png]
"""

from __future__ import annotations

import argparse
import time

import jax
import matplotlib
import optax

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import probkit.models.pvrnn as pvrnn  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pvrnn_online_prediction.png")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    start = time.perf_counter()
    data = pvrnn.switching_noise_sine(jax.random.key(0), 12, 60)
    net = pvrnn.PVRNN(jax.random.key(1), 1, num_d=(24,), num_z=(2,), tau=(2.0,), output_std=0.1)
    fit = pvrnn.fit(
        jax.random.key(2),
        net,
        data.observations,
        meta_prior=1.0,
        num_steps=args.steps,
        optimizer=optax.adam(1e-2),
    )
    print(
        f"trained in {time.perf_counter() - start:.1f} s: reconstruction "
        f"{fit.reconstruction[-1]:.1f}, KL {fit.kl[-1].sum():.1f}"
    )

    test = pvrnn.switching_noise_sine(jax.random.key(5), 1, 80)
    window = 10
    result = pvrnn.error_regression(
        fit.model, test.observations[0], window=window, num_iterations=40, learning_rate=0.1
    )
    prior = pvrnn.generate(fit.model, 80)
    signal = np.asarray(test.signal[0, :, 0])
    er_mse = np.mean((np.asarray(result.predictions[:, 0]) - signal[window:]) ** 2)
    prior_mse = np.mean((np.asarray(prior.outputs[window:, 0]) - signal[window:]) ** 2)
    corr = np.corrcoef(
        np.asarray(result.prior_std.mean(-1)), np.asarray(test.noise_std[0, window:])
    )[0, 1]
    print(
        f"one-step MSE against the noise-free signal: error regression {er_mse:.4f}, "
        f"prior alone {prior_mse:.4f}; corr(expected noise, true noise) = {corr:.2f}"
    )

    t = np.arange(80)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    axes[0].plot(t, np.asarray(test.observations[0, :, 0]), ".", color="0.5", label="observed")
    axes[0].plot(t, signal, color="k", lw=1, label="noise-free signal")
    axes[0].plot(
        result.times,
        np.asarray(result.predictions[:, 0]),
        color="C0",
        label="one-step prediction (error regression)",
    )
    axes[0].plot(t, np.asarray(prior.outputs[:, 0]), color="C3", ls="--", label="prior alone")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_ylabel("x")
    axes[1].step(t, np.asarray(test.noise_std[0]), where="mid", color="k", label="true noise std")
    axes[1].plot(
        result.times,
        np.asarray(result.prior_std.mean(-1)),
        color="C0",
        label="prior latent std (network's expected noise)",
    )
    axes[1].set_xlabel("time step")
    axes[1].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
