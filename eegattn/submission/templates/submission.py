"""EEG Foundation Challenge 2025 submission, packed by `eegattn package`.

Needs only torch (written for the server's Python 3.10 and torch 2.2.2; nothing else is
imported). Each challenge's model is a TorchScript archive (`weights_challenge_<k>.pt`) that
holds the network's code and weights together, including its input normalisation, so the
models take the raw windows the harness sends: (batch, 129, 200) float32 in volts at 100 Hz,
and return (batch, 1).

The weight files are looked up next to this file first, then in the harness's folders
(/app/input/res, /app/input) and the working directory.

Packed models:
__EEGATTN_MODELS__
"""

import os
from pathlib import Path

import torch
from torch import nn

N_CHANS = 129
N_TIMES = 200
SFREQ_EXPECTED = 100
WEIGHT_FILES = {1: "weights_challenge_1.pt", 2: "weights_challenge_2.pt"}
HARNESS_DIRS = ("/app/input/res", "/app/input")


def _search_dirs():
    dirs = [Path(__file__).resolve().parent]
    dirs += [Path(d) for d in HARNESS_DIRS]
    dirs.append(Path(os.getcwd()))
    return dirs


def find_weights(name):
    """Path of the weight file `name`: next to this file, else in the harness's folders."""
    searched = []
    for folder in _search_dirs():
        path = folder / name
        if path.is_file():
            return path
        searched.append(str(folder))
    raise FileNotFoundError(
        "weight file %r not found in %s; put it next to submission.py at the top of the zip"
        % (name, ", ".join(searched))
    )


class PackedModel(nn.Module):
    """A loaded TorchScript network behind a plain module with an input check.

    Input (batch, 129, 200) float tensor in volts (cast to float32 and moved to the model's
    device if needed); output (batch, 1). TorchScript's profiling optimiser is switched off
    around each call so every call runs the same kernels (equal outputs for equal inputs, no
    warm-up recompilation on the server).
    """

    def __init__(self, network, name):
        super().__init__()
        self.network = network
        self.name = name

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(
                "%s expects a tensor of shape (batch, %d, %d), got %r"
                % (self.name, N_CHANS, N_TIMES, getattr(x, "shape", type(x)))
            )
        if x.shape[1] != N_CHANS or x.shape[2] != N_TIMES:
            raise ValueError(
                "%s expects windows of %d channels x %d samples, got %s"
                % (self.name, N_CHANS, N_TIMES, tuple(x.shape))
            )
        if x.dtype != torch.float32:
            x = x.float()
        for parameter in self.network.parameters():
            if x.device != parameter.device:
                x = x.to(parameter.device)
            break
        with torch.jit.optimized_execution(False):
            return self.network(x)


class Submission:
    """The harness's entry point: `Submission(SFREQ, DEVICE)` then `get_model_challenge_k()`."""

    def __init__(self, SFREQ, DEVICE):
        if float(SFREQ) != SFREQ_EXPECTED:
            raise ValueError(
                "these models were trained on %d Hz windows, got SFREQ=%r" % (SFREQ_EXPECTED, SFREQ)
            )
        self.sfreq = SFREQ
        self.device = torch.device(DEVICE)

    def _load(self, challenge):
        path = find_weights(WEIGHT_FILES[challenge])
        network = torch.jit.load(str(path), map_location=self.device)
        model = PackedModel(network, "challenge %d model" % challenge)
        model.to(self.device)
        model.eval()
        return model

    def get_model_challenge_1(self):
        return self._load(1)

    def get_model_challenge_2(self):
        return self._load(2)
