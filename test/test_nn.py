"""Unit tests of the pure-torch context modules."""

import subprocess
import sys

import pytest
import torch

from espnet_gcft.nn import CrossAttentionFusion, PoolingFCStudent, masked_distance, pool_rows


def _fusion(**kw):
    torch.manual_seed(0)
    conf = dict(input_size=12, context_dim=6, attention_dim=8, num_heads=2)
    conf.update(kw)
    return CrossAttentionFusion(**conf)


def test_nn_imports_no_espnet():
    code = "import sys, espnet_gcft.nn; sys.exit(any(m.startswith('espnet2') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_fusion_without_context_returns_frames_unchanged():
    fusion = _fusion()
    frames = torch.randn(2, 5, 12)
    # L = 0 for the whole batch, and L = 0 for one row of a padded batch.
    out_empty = fusion(frames, torch.zeros(2, 0, 6), torch.tensor([0, 0]))
    assert torch.equal(out_empty, frames)
    context = torch.randn(2, 3, 6)
    out = fusion(frames, context, torch.tensor([3, 0]))
    assert torch.isfinite(out).all()
    assert torch.equal(out[1], frames[1])
    assert not torch.allclose(out[0], frames[0])


def test_fusion_ignores_padded_context_rows():
    fusion = _fusion()
    frames = torch.randn(1, 4, 12)
    context = torch.randn(1, 2, 6)
    padded = torch.cat([context, 1e3 * torch.randn(1, 3, 6)], dim=1)
    short = fusion(frames, context, torch.tensor([2]))
    long = fusion(frames, padded, torch.tensor([2]))
    assert torch.allclose(short, long, atol=1e-6)


def test_fusion_single_vector_differs_per_frame():
    """With L = 1 the null key makes the added update depend on the frame.

    One head: every frame adds the same projected value, scaled by its own
    attention weight on the context key (a softmax over one key would give 1).
    """
    fusion = _fusion(num_heads=1)
    frames = torch.randn(1, 6, 12)
    update = fusion(frames, torch.randn(1, 1, 6), torch.tensor([1])) - frames
    directions = torch.nn.functional.normalize(update[0], dim=-1)
    norms = update[0].norm(dim=-1)
    # same direction (one value vector), different amounts per frame
    assert torch.allclose(directions, directions[:1].expand_as(directions), atol=1e-5)
    assert norms.max() - norms.min() > 1e-4


def test_fusion_gradients_reach_all_parameters():
    fusion = _fusion()
    frames = torch.randn(2, 5, 12, requires_grad=True)
    out = fusion(frames, torch.randn(2, 2, 6), torch.tensor([2, 1]))
    out.pow(2).sum().backward()
    for name, param in fusion.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(attention_dim=10, num_heads=3), "attention_dim"),
        (dict(context_dim=0), "context_dim"),
        (dict(dropout=1.5), "dropout"),
    ],
)
def test_fusion_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        _fusion(**kwargs)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_student_ignores_padded_frames(pooling):
    torch.manual_seed(0)
    student = PoolingFCStudent(input_size=12, context_dim=6, pooling=pooling)
    frames = torch.randn(1, 4, 12)
    padded = torch.cat([frames, 1e3 * torch.randn(1, 3, 12)], dim=1)
    short, short_len = student(frames, torch.tensor([4]))
    long, _ = student(padded, torch.tensor([4]))
    assert short.shape == (1, 1, 6) and short_len.tolist() == [1]
    assert torch.allclose(short, long, atol=1e-5)


def test_student_mean_pooling_is_the_mean():
    student = PoolingFCStudent(input_size=3, context_dim=3, pooling="mean")
    with torch.no_grad():
        student.projection.weight.copy_(torch.eye(3))
        student.projection.bias.zero_()
    frames = torch.tensor([[[1.0, 2, 3], [3, 4, 5], [100, 100, 100]]])
    out, _ = student(frames, torch.tensor([2]))
    assert torch.allclose(out, torch.tensor([[[2.0, 3, 4]]]))


def test_student_queries_predict_a_sequence():
    student = PoolingFCStudent(input_size=12, context_dim=6, pooling="attention", num_queries=5)
    out, lengths = student(torch.randn(3, 7, 12), torch.tensor([7, 5, 1]))
    assert out.shape == (3, 5, 6) and lengths.tolist() == [5, 5, 5]
    assert torch.isfinite(out).all()


def test_student_rejects_queries_with_mean():
    with pytest.raises(ValueError, match="`num_queries`"):
        PoolingFCStudent(input_size=4, context_dim=2, pooling="mean", num_queries=3)


def test_distances_known_values():
    pred = torch.tensor([[[1.0, 0.0]], [[0.0, 2.0]]])
    target = torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]]])
    ones = torch.tensor([1, 1])
    # mse: ||p - t||^2 / ||t||^2 = 1/2 and 1/1; l1: 1/2 and 1/1
    assert masked_distance(pred, ones, target, ones, "mse").item() == pytest.approx((0.5 + 1.0) / 2)
    assert masked_distance(pred, ones, target, ones, "l1").item() == pytest.approx((0.5 + 1.0) / 2)
    # cosine: row 0 at 45 degrees, row 1 parallel
    expected = ((1 - 2 ** -0.5) + 0.0) / 2
    assert masked_distance(pred, ones, target, ones, "cosine").item() == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["mse", "l1", "cosine"])
def test_distances_do_not_depend_on_embedding_size_or_scale(kind):
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 1, 8, generator=gen), torch.randn(4, 1, 8, generator=gen)
    ones = torch.ones(4, dtype=torch.long)
    base = masked_distance(pred, ones, target, ones, kind).item()
    # the same vectors repeated to 4x the size, and scaled by 100
    wide = masked_distance(pred.repeat(1, 1, 4) * 100, ones, target.repeat(1, 1, 4) * 100, ones, kind)
    assert wide.item() == pytest.approx(base, rel=1e-5)


def test_distances_exclude_padded_rows_and_missing_targets():
    pred = torch.tensor([[[1.0], [5.0]], [[7.0], [7.0]]])
    target = torch.tensor([[[2.0], [99.0]], [[0.0], [0.0]]])
    # utterance 0: one valid target row (row 1 is padding): it is the target of
    # student row 0 only, |1 - 2| / 2; utterance 1: no target at all
    loss = masked_distance(pred, torch.tensor([2, 2]), target, torch.tensor([1, 0]), "l1")
    assert loss.item() == pytest.approx(0.5)
    pred.requires_grad_(True)
    none = masked_distance(pred, torch.tensor([2, 2]), target, torch.tensor([0, 0]), "mse")
    assert none.item() == 0.0 and none.requires_grad  # stays in the graph, adds nothing


def test_sequence_target_is_pooled_to_the_student_rows():
    """A (L, C) token sequence against one student row: the target is the sequence's mean."""
    sequence = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [0.0, 0.0]]])  # 3 valid rows
    pooled, valid = pool_rows(sequence, torch.tensor([3]), rows=1)
    assert torch.allclose(pooled, torch.tensor([[[3.0, 2.0]]])) and valid.all()
    # the student that predicts the mean has distance 0, one that predicts the first row does not
    one = torch.tensor([1])
    assert masked_distance(torch.tensor([[[3.0, 2.0]]]), one, sequence, torch.tensor([3]),
                           "mse").item() == pytest.approx(0.0)
    assert masked_distance(sequence[:, :1], one, sequence, torch.tensor([3]), "mse").item() > 0.5
    # two student rows: rows 0-1 (floor(j * 2 / 3) = 0) and row 2
    pooled, valid = pool_rows(sequence, torch.tensor([3]), rows=2)
    assert torch.allclose(pooled, torch.tensor([[[2.0, 1.0], [5.0, 4.0]]])) and valid.all()
    # more student rows than target rows: the surplus rows have no target
    _, valid = pool_rows(sequence, torch.tensor([1]), rows=2)
    assert valid.tolist() == [[True, False]]


def test_distance_kind_is_checked():
    x = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match="distill_loss"):
        masked_distance(x, torch.tensor([1]), x, torch.tensor([1]), "kl")
