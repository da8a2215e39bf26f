"""Heads that read a latency off a sequence of time tokens (challenge 1's response time).

The challenge-1 window (+0.5..+2.5 s after the stimulus) usually contains the button press, so
the response time is *where in the window* something happens. The best challenge-1 entries
read it that way (docs/challenge.md, "What the best challenge-1 entries did"). Two heads do:

``softargmax``
    one logit per time token, softmax over time, and the expected latency of the tokens
    (token centres in seconds from the stimulus). Trained with the estimator's regression
    loss on that expectation (it is differentiable).
``distribution``
    the same softmax, trained to match a target distribution over the tokens: a Gaussian of
    width ``sigma`` seconds around the true response time, with cross-entropy (equal to KL up
    to the target's entropy) or the Wasserstein-1 distance between the two distributions over
    ordered time (the area between their cumulative sums). It predicts the expectation too.

``regression`` (pooling and an MLP, every model's default) is built by the models themselves.

Scoring each token: ``kernel=1`` scores a token from its own features (one linear map);
``kernel=k > 1`` scores it from the k tokens around it (a convolution over time, a GELU, a
linear map), so the score can match a template that spans the press: a readiness potential
before it, a positivity after it. The third challenge-1 entry scored every time step with a
temporal convolutional network for the same reason.

Response times outside the window: two more bins, "before the window" and "after the
window", sit at the ends of the time axis, one token outside each edge. A press before +0.5 s
or after +2.5 s has its target mass in those bins, so it neither crashes nor drags the
in-window bins; the expectation can leave the window.

Shapes: tokens (b, n_tokens, dim) -> (b, 1) in evaluation; in training the distribution head
returns (b, 1 + n_tokens + 2): the expectation, then the log-probabilities its criterion
reads (:meth:`TimeHead.criterion`; the training loop uses a model's ``criterion`` when it has
one). Traced submissions run in evaluation mode and always see (b, 1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegattn.challenge import C1_SHIFT_AFTER_STIMULUS_S
from eegattn.utils.check import (
    check_fraction,
    check_option,
    check_positive_int,
    check_positive_number,
)

__all__ = ["HEADS", "DISTRIBUTION_LOSSES", "TimeHead", "check_head", "head_loss"]

HEADS = ("regression", "softargmax", "distribution")
#: tokens each time score reads (see the module's docstring): 15 tokens of
#: ``lightweight_fast`` span 1.2 s. Chosen among 1, 5, 9, 15 and 25 on challenge-1 splits 10-11
#: (docs/experiments.md, "Time heads that read a span of tokens")
DEFAULT_KERNEL = 15
DISTRIBUTION_LOSSES = ("ce", "wasserstein")


def check_head(head: str, head_options: dict | None) -> dict:
    """Validate ``head`` and its options; returns the options with defaults filled in."""
    check_option("head", head, HEADS)
    options = dict(head_options or {})
    allowed = {"regression": (), "softargmax": ("time_origin", "kernel"),
               "distribution": ("time_origin", "kernel", "sigma", "loss")}[head]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown head option(s) {', '.join(map(repr, unknown))} for head={head!r}; "
            f"valid: {', '.join(allowed) or 'none'}"
        )
    if head != "regression":
        options.setdefault("time_origin", C1_SHIFT_AFTER_STIMULUS_S)
        check_fraction(options["time_origin"], "time_origin", low=-10.0, high=10.0,
                       fix="It is the time of the window's first sample after the stimulus, "
                       "in seconds (0.5 for challenge 1).")
        options.setdefault("kernel", DEFAULT_KERNEL)
        kernel = check_positive_int(options["kernel"], "kernel")
        if kernel % 2 == 0:
            raise ValueError(f"kernel={kernel}: the time head's kernel must be odd (tokens "
                             "centred on the one scored); use e.g. 1, 3, 5 or 7")
    if head == "distribution":
        options.setdefault("sigma", 0.1)
        options.setdefault("loss", "ce")
        check_positive_number(options["sigma"], "sigma", unit="seconds")
        check_option("loss", options["loss"], DISTRIBUTION_LOSSES)
    return options


class TimeHead(nn.Module):
    """Softmax over time tokens (and two out-of-window bins) -> expected latency in seconds.

    Parameters
    ----------
    dim : width of each token.
    n_tokens : tokens covering the window, in time order.
    window_s : the window's length in seconds (``n_times / sfreq``).
    time_origin : seconds from the stimulus to the window's first sample (0.5 for challenge 1).
    distribution : train against a target distribution (``criterion``) instead of the
        regression loss on the expectation.
    sigma, loss : the target Gaussian's width in seconds, and ``"ce"`` or ``"wasserstein"``.
    kernel : tokens read to score each token (odd; 1: the token alone).
    """

    #: the prediction is an expectation over latencies: it starts at the targets' distribution
    #: over the bins (``init_prior``), not at an output bias
    predicts_latency = True

    def __init__(self, dim: int, n_tokens: int, *, window_s: float, time_origin: float = 0.5,
                 distribution: bool = False, sigma: float = 0.1, loss: str = "ce",
                 kernel: int = DEFAULT_KERNEL) -> None:
        super().__init__()
        self.n_tokens, self.distribution = int(n_tokens), bool(distribution)
        self.sigma, self.loss = float(sigma), loss
        step = window_s / n_tokens
        centres = time_origin + step * (torch.arange(n_tokens, dtype=torch.float32) + 0.5)
        self.register_buffer("centres", centres, persistent=False)  # (n_tokens,) seconds
        # latencies of "before" and "after" the window: one token outside each edge, fixed
        # (a parameter would get no gradient from the distribution loss and weight decay
        # would pull it into the window)
        self.register_buffer("edge_latency", torch.tensor(
            [time_origin - step / 2, time_origin + window_s + step / 2]))
        self.kernel = int(kernel)
        self.token_logit = nn.Linear(dim, 1) if self.kernel == 1 else TokenScorer(dim, kernel)
        self.edge_logit = nn.Linear(dim, 2)  # pooled (b, dim) -> (b, 2)
        # log prior over the bins (before, tokens, after), added to every window's logits:
        # without it training starts from a flat distribution whose expectation is the
        # window's centre (1.5 s), far from typical response times (about 0.8 s)
        self.prior = nn.Parameter(torch.zeros(n_tokens + 2))

    def latencies(self) -> Tensor:
        """(n_tokens + 2,) seconds: before, the token centres, after."""
        return torch.cat([self.edge_latency[:1], self.centres, self.edge_latency[1:]])

    def forward(self, tokens: Tensor) -> Tensor:
        # tokens: (b, T, dim)
        edges = self.edge_logit(tokens.mean(1))  # (b, 2): before / after the window
        logits = torch.cat([edges[:, :1], self.token_logit(tokens)[..., 0], edges[:, 1:]],
                           dim=1) + self.prior  # (b, T + 2)
        log_p = torch.log_softmax(logits, dim=1)
        expected = (log_p.exp() * self.latencies()).sum(1, keepdim=True)  # (b, 1) seconds
        if self.distribution and self.training:
            return torch.cat([expected, log_p], dim=1)  # (b, 1 + T + 2) for the criterion
        return expected

    def init_prior(self, targets) -> None:
        """Start at the training targets' distribution over the bins (each target counted in
        its nearest bin, plus one per bin), as a regression head starts at the target mean."""
        latencies = self.latencies().detach().cpu()
        y = torch.as_tensor(targets, dtype=latencies.dtype).reshape(-1)
        nearest = (y[:, None] - latencies[None, :]).abs().argmin(dim=1)
        counts = torch.bincount(nearest, minlength=latencies.numel()).to(latencies.dtype) + 1
        with torch.no_grad():
            self.prior.copy_(torch.log(counts / counts.sum()))

    def target_distribution(self, y: Tensor) -> Tensor:
        """(b,) seconds -> (b, T + 2): a Gaussian of width ``sigma`` at the bins' latencies."""
        z = (self.latencies().detach()[None, :] - y[:, None]) / self.sigma
        return torch.softmax(-0.5 * z * z, dim=1)  # the Gaussian's constant cancels here

    def criterion(self, output: Tensor, y: Tensor) -> Tensor:
        """Loss of a training output (b, 1 + T + 2) against targets (b,) in seconds."""
        log_p = output[:, 1:]
        q = self.target_distribution(y)
        if self.loss == "ce":
            return -(q * log_p).sum(1).mean()
        # Wasserstein-1 over ordered bins: area between the cumulative distributions, each
        # bin one token step wide
        step = float(self.centres[1] - self.centres[0]) if self.n_tokens > 1 else 1.0
        cdf_gap = torch.cumsum(log_p.exp() - q, dim=1)
        return cdf_gap.abs().sum(1).mean() * step

    def extra_repr(self) -> str:
        kind = f"distribution ({self.loss}, sigma={self.sigma} s)" if self.distribution else (
            "softargmax")
        start = float(self.centres[0]) - (
            float(self.centres[1] - self.centres[0]) / 2 if self.n_tokens > 1 else 0.0)
        return (f"n_tokens={self.n_tokens}, kernel={self.kernel}, {kind}, "
                f"window from {start:.3g} s")


class TokenScorer(nn.Module):
    """(b, T, dim) -> (b, T, 1): a score per token from the ``kernel`` tokens around it.

    The tokens are first projected to ``width`` features: a convolution at the model's full
    width (256 in ``lightweight_fast``) would double the model's FLOPs at kernel 15.
    """

    def __init__(self, dim: int, kernel: int, width: int = 64) -> None:
        super().__init__()
        self.project = nn.Linear(dim, width)  # (b, T, dim) -> (b, T, width)
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)  # same length
        self.act = nn.GELU()
        self.out = nn.Linear(width, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.project(tokens).transpose(1, 2)  # (b, width, T)
        return self.out(self.act(self.conv(x)).transpose(1, 2))  # (b, T, 1)


def head_loss(head):
    """A model's ``loss_criterion()``: the distribution head's own training loss, or None
    (every other head trains with the estimator's regression loss)."""
    if isinstance(head, TimeHead) and head.distribution:
        return head.criterion
    return None
