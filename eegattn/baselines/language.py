"""Language baseline: a small causal transformer LM per attention mechanism.

Tasks (nothing is downloaded):

- ``recall`` - multi-query associative recall (Arora et al. 2023, "Zoology"): ``P`` key-value
  pairs ``k1 v1 ... kP vP``, then ``Q`` of the keys again, each followed by its value
  ``q1 a1 ... qQ aQ``. The model must predict ``a_j`` at the position of ``q_j``: it has to
  look the key up far back in the context. Keys are distinct within a sequence, so every
  answer is determined.
- ``copy`` - selective copying (Gu & Dao 2023, "Mamba"): ``N`` data symbols scattered at
  random positions of a ``C``-token context filled with a noise token, then a separator, then
  the data symbols in order. The model must predict each data symbol from the separator on.
- ``text`` - byte-level language modelling (vocabulary 256, no tokenizer to download) on a
  local corpus (``--corpus DIR``, e.g. WikiText-103's ``wiki.train.tokens`` /
  ``wiki.valid.tokens`` / ``wiki.test.tokens`` as DiGiugno & Mahmood) or, by default, on the English
  dataset descriptions that ship with scikit-learn (``sklearn/datasets/descr/*.rst``, ~43 kB:
  a small embedded corpus, enough to compare mechanisms, not to train a good LM).

Synthetic sequences are generated on the fly from seeded numpy generators: training batches
from the model seed, the validation and test sets from fixed seeds of their own (so every
model sees the same held-out sequences). Targets are aligned with the inputs: ``targets[i]``
is what the logits at position ``i`` must predict, ``IGNORE_INDEX`` (-100) where nothing is
scored.

Reported per mechanism and task on the test split: token accuracy on the scored positions,
exact match (every answer of a sequence right), perplexity ``exp(mean NLL)`` of the scored
tokens (bytes for ``text``), mean wall time per training step, and the activation memory a
training step keeps for the backward pass (bytes of the distinct tensors saved by autograd,
parameters excluded, measured with ``torch.autograd.graph.saved_tensors_hooks``; on CUDA also
the peak allocated memory).
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from eegattn.baselines import run_environment, run_in_folder
from eegattn.models.language import CausalTransformerLM
from eegattn.plots import plot_attention_maps, plot_bars, plot_learning_curves
from eegattn.utils.io import write_json_atomic, write_text_atomic

__all__ = [
    "DEFAULT_MECHANISMS",
    "IGNORE_INDEX",
    "TASKS",
    "AssociativeRecall",
    "ByteCorpus",
    "LanguageConfig",
    "SelectiveCopy",
    "embedded_corpus",
    "evaluate_lm",
    "load_text_corpus",
    "parse_mechanism",
    "run_language_baseline",
    "saved_activation_bytes",
    "train_lm",
]

IGNORE_INDEX = -100
TASKS = ("recall", "copy", "text")
DEFAULT_MECHANISMS = ("standard", "neural", "selective", "linear", "local")
#: options a mechanism gets unless the caller overrides them
DEFAULT_ATTENTION_OPTIONS = {"local": {"window": 8}}
#: held-out sets come from these fixed seeds, independent of the model seed
VALID_SEED, TEST_SEED = 1_000_003, 2_000_003


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


# --------------------------------------------------------------------------- synthetic tasks


@dataclass(frozen=True)
class AssociativeRecall:
    """Multi-query associative recall. Token ids: keys ``[0, num_keys)``, values
    ``[num_keys, num_keys + num_values)``. Sequence length ``2 * (num_pairs + num_queries)``;
    the answer to query ``j`` is scored at position ``2 * num_pairs + 2 * j``."""

    num_pairs: int = 8
    num_queries: int = 4
    num_keys: int = 32
    num_values: int = 32
    name: str = field(default="recall", init=False)

    def __post_init__(self) -> None:
        _check_int("num_pairs", self.num_pairs)
        _check_int("num_queries", self.num_queries)
        _check_int("num_keys", self.num_keys)
        _check_int("num_values", self.num_values)
        if self.num_pairs > self.num_keys:
            raise ValueError(
                f"num_pairs={self.num_pairs} needs at least as many keys (num_keys="
                f"{self.num_keys}): keys are distinct within a sequence"
            )
        if self.num_queries > self.num_pairs:
            raise ValueError(
                f"num_queries={self.num_queries} must be <= num_pairs={self.num_pairs}: each "
                "query asks a different stored key"
            )

    @property
    def vocab_size(self) -> int:
        return self.num_keys + self.num_values

    @property
    def seq_len(self) -> int:
        return 2 * (self.num_pairs + self.num_queries)

    def answer_positions(self) -> np.ndarray:
        return 2 * self.num_pairs + 2 * np.arange(self.num_queries)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, targets)``, int64 (n, seq_len)."""
        _check_int("n", n)
        p, q = self.num_pairs, self.num_queries
        keys = np.argsort(rng.random((n, self.num_keys)), axis=1)[:, :p]
        values = rng.integers(self.num_keys, self.vocab_size, size=(n, p))
        asked = np.argsort(rng.random((n, p)), axis=1)[:, :q]
        tokens = np.empty((n, self.seq_len), dtype=np.int64)
        tokens[:, 0:2 * p:2] = keys
        tokens[:, 1:2 * p:2] = values
        rows = np.arange(n)[:, None]
        tokens[:, 2 * p::2] = keys[rows, asked]
        tokens[:, 2 * p + 1::2] = values[rows, asked]
        targets = np.full_like(tokens, IGNORE_INDEX)
        targets[:, self.answer_positions()] = values[rows, asked]
        return tokens, targets


@dataclass(frozen=True)
class SelectiveCopy:
    """Selective copying. Token ids: data symbols ``[0, num_symbols)``, noise
    ``num_symbols``, separator ``num_symbols + 1``. Sequence length
    ``context_len + 1 + num_tokens``; symbol ``j`` is scored at position ``context_len + j``
    (the separator predicts the first symbol, symbol ``j - 1`` predicts symbol ``j``)."""

    context_len: int = 32
    num_tokens: int = 8
    num_symbols: int = 16
    name: str = field(default="copy", init=False)

    def __post_init__(self) -> None:
        _check_int("context_len", self.context_len)
        _check_int("num_tokens", self.num_tokens)
        _check_int("num_symbols", self.num_symbols)
        if self.num_tokens > self.context_len:
            raise ValueError(
                f"num_tokens={self.num_tokens} data symbols do not fit in context_len="
                f"{self.context_len}; raise context_len"
            )

    @property
    def noise(self) -> int:
        return self.num_symbols

    @property
    def separator(self) -> int:
        return self.num_symbols + 1

    @property
    def vocab_size(self) -> int:
        return self.num_symbols + 2

    @property
    def seq_len(self) -> int:
        return self.context_len + 1 + self.num_tokens

    def answer_positions(self) -> np.ndarray:
        return self.context_len + np.arange(self.num_tokens)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, targets)``, int64 (n, seq_len)."""
        _check_int("n", n)
        c, k = self.context_len, self.num_tokens
        positions = np.sort(np.argsort(rng.random((n, c)), axis=1)[:, :k], axis=1)
        symbols = rng.integers(0, self.num_symbols, size=(n, k))
        tokens = np.full((n, self.seq_len), self.noise, dtype=np.int64)
        rows = np.arange(n)[:, None]
        tokens[rows, positions] = symbols
        tokens[:, c] = self.separator
        tokens[:, c + 1:] = symbols
        targets = np.full_like(tokens, IGNORE_INDEX)
        targets[:, self.answer_positions()] = symbols
        return tokens, targets


# --------------------------------------------------------------------------- text


@dataclass
class ByteCorpus:
    """A byte-level corpus: ``train`` / ``valid`` / ``test`` uint8 arrays (vocabulary 256)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    source: str
    name: str = "text"
    vocab_size: int = 256
    seq_len: int = 32

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random training windows: tokens = bytes ``[s, s + L)``, targets shifted by one."""
        _check_int("n", n)
        if len(self.train) < self.seq_len + 1:
            raise ValueError(
                f"the training text has {len(self.train)} bytes, fewer than one window of "
                f"{self.seq_len + 1}; give a larger corpus or a shorter --seq-len"
            )
        starts = rng.integers(0, len(self.train) - self.seq_len, size=n)
        windows = self.train[starts[:, None] + np.arange(self.seq_len + 1)].astype(np.int64)
        return windows[:, :-1], windows[:, 1:]

    def windows(self, split: str, max_windows: int) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive non-overlapping windows of a held-out split (every byte scored once)."""
        data = {"valid": self.valid, "test": self.test}[split]
        count = min(max_windows, (len(data) - 1) // self.seq_len)
        if count < 1:
            raise ValueError(
                f"the {split} text has {len(data)} bytes, fewer than one window of "
                f"{self.seq_len + 1}; give a larger corpus or a shorter --seq-len"
            )
        idx = np.arange(count)[:, None] * self.seq_len + np.arange(self.seq_len + 1)
        windows = data[idx].astype(np.int64)
        return windows[:, :-1], windows[:, 1:]


def _split_bytes(data: np.ndarray, source: str, seq_len: int) -> ByteCorpus:
    """90 / 5 / 5 split of one byte stream (contiguous blocks: no window straddles splits)."""
    n = len(data)
    a, b = int(0.9 * n), int(0.95 * n)
    return ByteCorpus(data[:a], data[a:b], data[b:], source, seq_len=seq_len)


def embedded_corpus(seq_len: int = 32) -> ByteCorpus:
    """The dataset descriptions shipped with scikit-learn (English reStructuredText)."""
    import sklearn.datasets

    folder = Path(sklearn.datasets.__file__).parent / "descr"
    files = sorted(folder.glob("*.rst"))
    if not files:  # pragma: no cover - guards against a changed scikit-learn layout
        raise FileNotFoundError(f"no .rst files in {folder}; pass --corpus DIR instead")
    data = np.frombuffer(b"\n".join(f.read_bytes() for f in files), dtype=np.uint8)
    return _split_bytes(data, f"scikit-learn dataset descriptions ({len(files)} files)", seq_len)


def _read_prefix(path: Path, limit: int) -> np.ndarray:
    with path.open("rb") as fh:
        return np.frombuffer(fh.read(limit), dtype=np.uint8)


def load_text_corpus(
    folder, *, seq_len: int = 32, max_train_bytes: int = 8_000_000,
    max_eval_bytes: int = 200_000,
) -> ByteCorpus:
    """Read a local text corpus as bytes.

    WikiText layout (``wiki.train.tokens``, ``wiki.valid.tokens``, ``wiki.test.tokens``, or the
    ``.raw`` files): the three files are the three splits. Otherwise every ``*.txt``,
    ``*.tokens`` and ``*.raw`` file of the folder is concatenated (sorted by name) and split
    90 / 5 / 5. At most ``max_train_bytes`` of training text and ``max_eval_bytes`` of each
    held-out split are read (the beginning of each file).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"corpus folder {folder} does not exist; give --corpus a folder of text files "
            "(e.g. WikiText-103's wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens)"
        )
    _check_int("max_train_bytes", max_train_bytes, seq_len + 1)
    _check_int("max_eval_bytes", max_eval_bytes, seq_len + 1)
    for ext in ("tokens", "raw"):
        names = [folder / f"wiki.{split}.{ext}" for split in ("train", "valid", "test")]
        if all(p.is_file() for p in names):
            train = _read_prefix(names[0], max_train_bytes)
            valid = _read_prefix(names[1], max_eval_bytes)
            test = _read_prefix(names[2], max_eval_bytes)
            return ByteCorpus(train, valid, test, f"{folder} (wiki.*.{ext})", seq_len=seq_len)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix in (".txt", ".tokens", ".raw"))
    if not files:
        raise FileNotFoundError(
            f"{folder} holds no wiki.{{train,valid,test}}.tokens and no .txt / .tokens / .raw "
            "file; put the corpus text there"
        )
    budget = max_train_bytes + 2 * max_eval_bytes
    chunks, total = [], 0
    for path in files:
        chunk = _read_prefix(path, budget - total)
        chunks.append(chunk)
        total += len(chunk)
        if total >= budget:
            break
    data = np.concatenate(chunks)
    if len(data) < 20 * (seq_len + 1):
        raise ValueError(
            f"the corpus in {folder} has only {len(data)} bytes; need at least "
            f"{20 * (seq_len + 1)} for train / valid / test windows of {seq_len + 1}"
        )
    return _split_bytes(data, f"{folder} ({len(files)} files)", seq_len)


# --------------------------------------------------------------------------- training


def parse_mechanism(spec: str) -> tuple[str, bool]:
    """``"neural"`` -> (``neural``, False); ``"neural:first"`` -> (``neural``, True): the
    mechanism in the first layer only, standard attention elsewhere (DiGiugno & Mahmood's
    placement)."""
    name, _, where = spec.partition(":")
    if where not in ("", "first"):
        raise ValueError(
            f"mechanism {spec!r}: write NAME or NAME:first (first layer only, as DiGiugno & "
            "Mahmood)"
        )
    from eegattn.attention import available_attention

    if name not in available_attention():
        raise ValueError(
            f"unknown attention {name!r}; choose among {', '.join(available_attention())}"
        )
    return name, where == "first"


def _lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


@torch.no_grad()
def evaluate_lm(model: nn.Module, tokens: np.ndarray, targets: np.ndarray, *,
                batch_size: int = 256, device: str = "cpu") -> dict:
    """Scored-token loss (mean NLL, nats), accuracy, exact match and perplexity."""
    model.eval()
    nll, correct, scored, exact, rows = 0.0, 0, 0, 0, 0
    for i in range(0, len(tokens), batch_size):
        x = torch.from_numpy(tokens[i:i + batch_size]).to(device)
        y = torch.from_numpy(targets[i:i + batch_size]).to(device)
        logits = model(x)
        mask = y != IGNORE_INDEX
        nll += float(nn.functional.cross_entropy(
            logits[mask], y[mask], reduction="sum"))
        hits = (logits.argmax(-1) == y) & mask
        correct += int(hits.sum())
        scored += int(mask.sum())
        exact += int((hits.sum(1) == mask.sum(1)).sum())
        rows += len(x)
    loss = nll / max(scored, 1)
    return {"loss": loss, "acc": correct / max(scored, 1), "exact": exact / max(rows, 1),
            "ppl": math.exp(min(loss, 50.0))}


def saved_activation_bytes(model: nn.Module, tokens: Tensor, targets: Tensor) -> int:
    """Bytes of the distinct tensors autograd saves for one training step's backward pass
    (parameters excluded). The step's gradients are discarded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        try:
            storage = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            return t
        ptr = storage.data_ptr()
        if ptr not in params:
            seen[ptr] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _lm_loss(model(tokens), targets)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values())


def train_lm(
    model: nn.Module,
    task,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray],
    eval_every: int,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[float]]:
    """AdamW with linear warm-up (10% of the steps) and cosine decay; fresh training batches
    from ``task.sample`` with a generator seeded by ``seed``. Returns the history (one record
    per evaluation: ``step, train_loss, valid_loss, valid_acc, valid_ppl``) and the wall time
    of every training step."""
    _check_int("steps", steps)
    _check_int("batch_size", batch_size)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98),
                                  weight_decay=0.01)
    warmup = max(1, steps // 10)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rng = np.random.default_rng([0, seed])
    history, step_times = [], []
    running, count = 0.0, 0
    for step in range(1, steps + 1):
        tokens, targets = task.sample(batch_size, rng)
        x, y = torch.from_numpy(tokens).to(device), torch.from_numpy(targets).to(device)
        model.train()
        start = time.perf_counter()
        loss = _lm_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - start)
        running += float(loss.detach())
        count += 1
        if step % eval_every == 0 or step == steps:
            metrics = evaluate_lm(model, *valid, device=device)
            record = {"step": step, "train_loss": running / count, "valid_loss": metrics["loss"],
                      "valid_acc": metrics["acc"], "valid_ppl": metrics["ppl"]}
            history.append(record)
            running, count = 0.0, 0
            if log:
                log(f"  step {step:5d}/{steps}  train loss {record['train_loss']:.3f}  "
                    f"valid loss {metrics['loss']:.3f}  acc {metrics['acc']:.3f}")
    return history, step_times


# --------------------------------------------------------------------------- the run


@dataclass
class LanguageConfig:
    """Settings of :func:`run_language_baseline` (CLI: ``eegattn baseline language``)."""

    mechanisms: tuple[str, ...] = DEFAULT_MECHANISMS
    tasks: tuple[str, ...] = TASKS
    corpus: str | None = None
    steps: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    dim: int = 64
    depth: int = 2
    heads: int = 4
    seq_len: int = 32
    token_shift: bool = True
    seeds: tuple[int, ...] = (0,)
    eval_size: int = 256
    eval_every: int | None = None
    max_train_bytes: int = 8_000_000
    max_eval_bytes: int = 200_000
    recall: dict = field(default_factory=dict)
    copy: dict = field(default_factory=dict)
    attention_options: dict = field(default_factory=dict)
    device: str = "cpu"
    threads: int | None = 1

    @classmethod
    def tiny(cls, **overrides) -> LanguageConfig:
        """Seconds-long settings for tests."""
        base = {"mechanisms": ("standard", "neural:first"), "steps": 6, "batch_size": 8,
                "dim": 16, "heads": 2, "depth": 2, "seq_len": 16, "eval_size": 16,
                "recall": {"num_pairs": 4, "num_queries": 2, "num_keys": 8, "num_values": 8},
                "copy": {"context_len": 8, "num_tokens": 3, "num_symbols": 6},
                "max_eval_bytes": 2_000}
        return cls(**{**base, **overrides})

    def check(self) -> None:
        for spec in self.mechanisms:
            parse_mechanism(spec)
        if not self.mechanisms:
            raise ValueError("give at least one mechanism")
        if len(set(self.mechanisms)) != len(self.mechanisms):
            raise ValueError(f"mechanisms must be distinct, got {list(self.mechanisms)}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks must be among {', '.join(TASKS)}, got {list(self.tasks)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"give at least one seed, all distinct; got {list(self.seeds)}")
        for name in ("steps", "batch_size", "dim", "depth", "heads", "seq_len", "eval_size"):
            _check_int(name, getattr(self, name))
        if self.threads is not None:
            _check_int("threads", self.threads)
        if self.corpus and "text" in self.tasks and not Path(self.corpus).expanduser().is_dir():
            raise FileNotFoundError(
                f"corpus folder {self.corpus} does not exist; give --corpus a folder of text "
                "files (e.g. WikiText-103's wiki.train.tokens, wiki.valid.tokens, "
                "wiki.test.tokens); nothing is downloaded"
            )


def build_tasks(config: LanguageConfig) -> dict:
    tasks = {}
    for name in config.tasks:
        if name == "recall":
            tasks[name] = AssociativeRecall(**config.recall)
        elif name == "copy":
            tasks[name] = SelectiveCopy(**config.copy)
        elif config.corpus:
            tasks[name] = load_text_corpus(
                config.corpus, seq_len=config.seq_len, max_train_bytes=config.max_train_bytes,
                max_eval_bytes=config.max_eval_bytes,
            )
        else:
            tasks[name] = embedded_corpus(config.seq_len)
    return tasks


def _held_out(task, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(task, ByteCorpus):
        return task.windows(split, size)
    return task.sample(size, np.random.default_rng(VALID_SEED if split == "valid" else TEST_SEED))


def _label(spec: str) -> str:
    name, first = parse_mechanism(spec)
    return f"{name} (first layer)" if first else name


def _mean_std(values: Sequence[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "n": len(arr)}


def _fmt(stat: dict, scale: float = 1.0, digits: int = 2) -> str:
    text = f"{scale * stat['mean']:.{digits}f}"
    return text + (f" ± {scale * stat['std']:.{digits}f}" if stat["n"] > 1 else "")


def format_table(results: dict) -> str:
    """Markdown: a summary (quality per task) and one cost table."""
    config, env = results["config"], results["environment"]
    tasks = results["tasks"]
    lines = [
        "# Language baseline: causal transformer LM per attention mechanism",
        "",
        f"{config['depth']} blocks, width {config['dim']}, {config['heads']} heads"
        f"{', token shift' if config['token_shift'] else ''}; "
        f"{config['steps']} AdamW steps of batch {config['batch_size']} (lr {config['lr']}, "
        f"warm-up + cosine) per task and seed; seeds {list(config['seeds'])} (mean ± sample std "
        f"over seeds); {env['threads']} thread(s) on {env['device']}. Test sets: "
        f"{config['eval_size']} held-out sequences per synthetic task (fixed seeds), the "
        "held-out text split for text.",
        "",
    ]
    for name, info in tasks.items():
        lines.append(f"- **{name}**: {info['description']}")
    lines.append("")
    header = "| Mechanism |"
    rule = "|---|"
    for name in tasks:
        if name == "text":
            header += " text: test ppl (bytes) | text: bits/byte |"
            rule += "---:|---:|"
        else:
            header += f" {name}: test acc (%) | {name}: exact (%) |"
            rule += "---:|---:|"
    lines += [header, rule]
    for entry in results["mechanisms"].values():
        row = f"| {entry['label']} |"
        for name in tasks:
            agg = entry["tasks"][name]["aggregate"]
            if name == "text":
                row += f" {_fmt(agg['test_ppl'])} | {_fmt(agg['test_bits_per_token'], digits=3)} |"
            else:
                row += f" {_fmt(agg['test_acc'], 100, 1)} | {_fmt(agg['test_exact'], 100, 1)} |"
        lines.append(row)
    lines += ["", "Cost per training step (ms) and activation memory kept for backward (MiB):",
              "", "| Mechanism | Params (w/o embeddings) |" + "".join(
                  f" {n}: ms/step | {n}: MiB |" for n in tasks),
              "|---|---:|" + "---:|---:|" * len(tasks)]
    for entry in results["mechanisms"].values():
        row = f"| {entry['label']} | {entry['params']:,} |"
        for name in tasks:
            agg = entry["tasks"][name]["aggregate"]
            row += f" {_fmt(agg['ms_per_step'], digits=1)} | {_fmt(agg['activation_mib'])} |"
        lines.append(row)
    lines.append("")
    return "\n".join(lines)


def _task_info(name: str, task) -> dict:
    if isinstance(task, ByteCorpus):
        return {"description": f"byte-level text from {task.source}: train {len(task.train):,}"
                f" / valid {len(task.valid):,} / test {len(task.test):,} bytes, windows of "
                f"{task.seq_len}", "vocab_size": 256, "seq_len": task.seq_len,
                "source": task.source}
    params = {k: v for k, v in asdict(task).items() if k != "name"}
    what = ("associative recall" if name == "recall" else "selective copying")
    return {"description": f"{what} {params}, sequence length {task.seq_len}, vocabulary "
            f"{task.vocab_size}", "vocab_size": task.vocab_size, "seq_len": task.seq_len,
            "params": params}


def run_language_baseline(
    config: LanguageConfig, run_dir, *, log: Callable[[str], None] | None = print
) -> dict:
    """Train one LM per mechanism, task and seed; write ``table.md``, ``results.json`` and PNG
    plots into ``run_dir`` (an existing, empty folder). Returns the results dict."""
    return run_in_folder(config, run_dir, _run_language_baseline, log)


def _run_language_baseline(config, run_dir: Path, log: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    tasks = build_tasks(config)
    results: dict = {
        "kind": "language",
        "config": asdict(config),
        "tasks": {name: _task_info(name, task) for name, task in tasks.items()},
        "environment": run_environment(config.device),
        "mechanisms": {},
    }
    held_out = {name: {split: _held_out(task, split, config.eval_size)
                       for split in ("valid", "test")} for name, task in tasks.items()}
    eval_every = config.eval_every or max(1, config.steps // 5)
    plotted_task = next(iter(tasks))  # attention maps of the first task only (plots are slow)
    curves: dict[str, dict[str, list]] = {name: {} for name in tasks}
    written = []
    for spec in config.mechanisms:
        name, first = parse_mechanism(spec)
        options = {**DEFAULT_ATTENTION_OPTIONS.get(name, {}),
                   **config.attention_options.get(name, {})}
        entry = {"label": _label(spec), "attention": name, "first_layer_only": first,
                 "attention_options": options, "tasks": {}}
        for task_name, task in tasks.items():
            runs = []
            for seed in config.seeds:
                torch.manual_seed(seed)
                model = CausalTransformerLM(
                    task.vocab_size, max_len=task.seq_len, dim=config.dim, depth=config.depth,
                    heads=config.heads, attention=name, attention_options=options,
                    first_layer_only=first, token_shift=config.token_shift,
                )
                # embeddings depend on the task's vocabulary and length: count the rest
                entry["params"] = sum(p.numel() for n, p in model.named_parameters()
                                      if not n.startswith(("token_embed", "pos_embed")))
                log(f"{entry['label']} on {task_name} (seed {seed})")
                probe = task.sample(config.batch_size, np.random.default_rng([1, seed]))
                probe = [torch.from_numpy(a).to(config.device) for a in probe]
                model.to(config.device)
                on_cuda = torch.device(config.device).type == "cuda"
                if on_cuda:
                    torch.cuda.reset_peak_memory_stats()
                activation = saved_activation_bytes(model, *probe)
                history, step_times = train_lm(
                    model, task, steps=config.steps, batch_size=config.batch_size,
                    lr=config.lr, seed=seed, valid=held_out[task_name]["valid"],
                    eval_every=eval_every, device=config.device, log=log,
                )
                test = evaluate_lm(model, *held_out[task_name]["test"], device=config.device)
                timed = step_times[2:] or step_times  # the first steps warm up allocators
                summary = {
                    "test_loss": test["loss"], "test_acc": test["acc"],
                    "test_exact": test["exact"], "test_ppl": test["ppl"],
                    "test_bits_per_token": test["loss"] / math.log(2),
                    "ms_per_step": 1000 * float(np.mean(timed)),
                    "activation_mib": activation / 2**20,
                }
                if on_cuda:
                    summary["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
                runs.append({"seed": seed, "summary": summary, "history": history})
                if seed == config.seeds[0]:
                    curves[task_name][entry["label"]] = history
                if seed == config.seeds[0] and task_name == plotted_task:
                    written += _attention_plots(run_dir, model, spec, task_name,
                                                held_out[task_name]["test"][0][:1], config)
            entry["tasks"][task_name] = {
                "aggregate": {k: _mean_std([r["summary"][k] for r in runs])
                              for k in runs[0]["summary"]},
                "runs": runs,
            }
        results["mechanisms"][spec] = entry
    for task_name, histories in curves.items():
        written.append(plot_learning_curves(
            histories, run_dir / f"learning_curves_{task_name}.png",
            keys=["valid_acc" if task_name != "text" else "valid_ppl", "train_loss"],
            title=f"{task_name}: held-out metric and training loss (seed {config.seeds[0]})",
        ))
        metric = "test_ppl" if task_name == "text" else "test_acc"
        written.append(plot_bars(
            {e["label"]: e["tasks"][task_name]["aggregate"][metric]["mean"]
             for e in results["mechanisms"].values()},
            run_dir / f"{task_name}_{metric}.png",
            errors={e["label"]: e["tasks"][task_name]["aggregate"][metric]["std"]
                    for e in results["mechanisms"].values()},
            ylabel=metric.replace("_", " "), title=task_name,
        ))
    results["plots"] = [p.name for p in written]
    results["wall_time_s"] = time.perf_counter() - started
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_text_atomic(run_dir / "table.md", format_table(results))
    write_json_atomic(run_dir / "results.json", results)
    log(f"wrote {run_dir / 'table.md'}, results.json and {len(written)} plots "
        f"in {results['wall_time_s']:.0f}s")
    return results


def _attention_plots(run_dir: Path, model: CausalTransformerLM, spec: str, task_name: str,
                     sample: np.ndarray, config: LanguageConfig) -> list[Path]:
    """Attention maps per head of every block on one held-out sequence."""
    model.store_attention(True)
    with torch.no_grad():
        model.eval()
        model(torch.from_numpy(sample).to(config.device))
    written = []
    slug = spec.replace(":", "-")
    for depth, module in enumerate(model.attention_modules()):
        if module.last_attention is None:
            continue
        written.append(plot_attention_maps(
            module.last_attention[0].cpu(),
            run_dir / f"attention_{task_name}_{slug}_block{depth}.png",
            title=f"{_label(spec)} on {task_name}, block {depth}, one test sequence",
        ))
    model.store_attention(False)
    return written
