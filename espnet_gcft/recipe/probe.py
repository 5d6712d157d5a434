"""Does the encoder hear the words? A linear probe from pooled encoder frames to a label.

The demo's distill-only topic words (``distill_topics``: ``<utt> <sense>``) are
learnable by GCAF's student only if the encoder's output carries them. The
probe reads the shared pretrained model's encoder output of each topic
sentence (no context: the model before any variant's fine-tuning), averages
its frames, standardises the features on the training sentences, fits a
multinomial logistic regression (L2-regularised, full-batch L-BFGS, seeded)
on the training set's sentences and scores the test set's: the share of test
sentences whose sense it names (``probe_sense_acc``, a Wilson interval).
"""

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

from espnet_gcft.errors import InputError
from espnet_gcft.fileio import read_text
from espnet_gcft.scoring.homophones import accuracy_record


class ProbeError(InputError, ValueError):
    """Probe inputs that do not fit (names the file)."""


def pooled_features(encode: Callable[[str], np.ndarray], utts: List[str]) -> np.ndarray:
    """(N, D) mean over frames of ``encode(utt)``, the (T, D) encoder output of each utterance."""
    return np.stack([encode(utt).mean(axis=0) for utt in utts])


def fit_probe(features: np.ndarray, labels: np.ndarray, classes: int, l2: float = 1e-2,
              steps: int = 200):
    """Logistic regression on standardised features; returns a predict function."""
    import torch

    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    x = torch.from_numpy((features - mean) / std).float()
    y = torch.from_numpy(labels).long()
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.size(1), classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x), y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)

    def predict(other: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = torch.from_numpy((other - mean) / std).float()
            return linear(z).argmax(dim=1).numpy()

    return predict


def read_labels(data: Path) -> Tuple[List[str], List[str]]:
    """(utterances, senses) of a data dir's ``distill_topics``."""
    path = data / "distill_topics"
    if not path.is_file():
        raise ProbeError(f"{path} is missing: the probe reads the distill-only topic sentences")
    labels = read_text(path)
    if not labels:
        raise ProbeError(f"{path} is empty")
    return list(labels), list(labels.values())


def probe_sense(encode: Callable[[Path, str], np.ndarray], train_dir: Path,
                test_dir: Path) -> Dict[str, dict]:
    """``probe_sense_acc``: fit on ``train_dir``'s distill topics, score ``test_dir``'s.

    ``encode(data_dir, utt)`` is the (T, D) encoder output of an utterance of a data dir.
    """
    train_utts, train_labels = read_labels(train_dir)
    test_utts, test_labels = read_labels(test_dir)
    classes = sorted(set(train_labels))
    unknown = sorted(set(test_labels) - set(classes))
    if unknown:
        raise ProbeError(f"{test_dir / 'distill_topics'}: sense {unknown[0]} has no training sentence")
    predict = fit_probe(pooled_features(lambda u: encode(train_dir, u), train_utts),
                        np.array([classes.index(c) for c in train_labels]), len(classes))
    predicted = predict(pooled_features(lambda u: encode(test_dir, u), test_utts))
    right = int(sum(classes[p] == label for p, label in zip(predicted, test_labels)))
    return {"probe_sense_acc": accuracy_record(right, len(test_labels))}
