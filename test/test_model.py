"""GCFTASRModel and GCFTTask with real ESPnet and a tiny wav2vec2 through S3PRL."""

import pytest
import torch
import yaml

from espnet2.asr.espnet_model import ESPnetASRModel
from espnet_gcft.asr.model import ContextError, GCFTASRModel
from gcft_helpers import CONTEXT_DIM, build_model, make_batch, train_config

MODES = ["none", "inject", "distill"]


@pytest.fixture(scope="module")
def models(wav2vec2_dir, tmp_path_factory):
    """One model per mode, built from YAML through the task."""
    built = {}
    for mode in MODES:
        tmp = tmp_path_factory.mktemp(mode)
        built[mode] = build_model(train_config(wav2vec2_dir, mode), tmp)[0]
    return built


def test_frontend_is_the_s3prl_custom_wav2vec2(models):
    frontend = models["none"].frontend
    assert type(frontend).__name__ == "S3prlFrontend"
    assert type(frontend.upstream.upstream.model).__name__ == "Wav2Vec2Model"


@pytest.mark.parametrize("mode", MODES)
def test_modules_follow_the_mode(models, mode):
    model = models[mode]
    assert isinstance(model, GCFTASRModel)
    assert (model.context_fusion is not None) == (mode != "none")
    assert (model.context_student is not None) == (mode == "distill")


@pytest.mark.parametrize("mode", MODES)
def test_forward_backward_reaches_context_modules(models, mode):
    model = models[mode]
    model.train()
    model.zero_grad()
    loss, stats, weight = model(**make_batch())
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    assert ("loss_ctx" in stats) == (mode == "distill")
    assert "loss_ctc" in stats and "loss_att" in stats
    for module in (model.context_fusion, model.context_student):
        if module is None:
            continue
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_distill_loss_is_weighted_into_the_total(wav2vec2_dir, tmp_path):
    losses = {}
    for weight in (0.0, 2.0):
        model, _ = build_model(
            train_config(wav2vec2_dir, "distill", distill_weight=weight), tmp_path
        )
        model.eval()
        with torch.no_grad():
            loss, stats, _ = model(**make_batch())
        losses[weight] = (float(loss), float(stats["loss_ctx"]))
    (base, ctx0), (weighted, ctx2) = losses[0.0], losses[2.0]
    assert ctx0 == pytest.approx(ctx2, rel=1e-5)
    assert weighted == pytest.approx(base + 2.0 * ctx2, rel=1e-5)


def test_distill_fusion_input_teacher_vs_student(wav2vec2_dir, tmp_path):
    """In training the fusion reads the teacher or the student, as configured."""
    outputs = {}
    for source in ("teacher", "student"):
        model, _ = build_model(
            train_config(wav2vec2_dir, "distill", distill_fusion_input=source), tmp_path
        )
        model.train()
        batch = make_batch()
        torch.manual_seed(1)
        with model.batch_context(batch["context"], batch["context_lengths"]):
            outputs[source] = model.encode(batch["speech"], batch["speech_lengths"])[0]
    assert not torch.allclose(outputs["teacher"], outputs["student"])


def test_distill_encodes_without_any_context(models):
    model = models["distill"]
    model.eval()
    batch = make_batch()
    with torch.no_grad():
        out, lens = model.encode(batch["speech"], batch["speech_lengths"])
    assert out.shape[0] == 2 and torch.isfinite(out).all()


def test_inject_without_context_is_an_error(models):
    batch = make_batch()
    with pytest.raises(ContextError, match="inject"):
        models["inject"].encode(batch["speech"], batch["speech_lengths"])


def test_none_mode_equals_plain_espnet_model(wav2vec2_dir, tmp_path):
    config = train_config(wav2vec2_dir, "none")
    gcft, _ = build_model(config, tmp_path)
    config["model"] = "espnet"
    config["model_conf"] = {"ctc_weight": config["model_conf"]["ctc_weight"]}
    plain, _ = build_model(config, tmp_path)
    assert type(plain) is ESPnetASRModel
    assert list(gcft.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(gcft.state_dict())
    gcft.eval()
    plain.eval()
    batch = make_batch()
    batch.pop("context")
    batch.pop("context_lengths")
    with torch.no_grad():
        loss_gcft, stats_gcft, _ = gcft(**batch)
        loss_plain, stats_plain, _ = plain(**batch)
    assert torch.equal(loss_gcft, loss_plain)
    assert set(stats_gcft) == set(stats_plain)


@pytest.mark.parametrize("mode", MODES)
def test_yaml_round_trip(wav2vec2_dir, tmp_path, mode):
    """Build, save config + weights, rebuild from the saved files: same outputs."""
    from espnet_gcft.asr.task import GCFTTask

    model, args = build_model(train_config(wav2vec2_dir, mode), tmp_path)
    config_file = tmp_path / "saved.yaml"
    config_file.write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), tmp_path / "model.pth")
    rebuilt, _ = GCFTTask.build_model_from_file(config_file, tmp_path / "model.pth")
    assert rebuilt.context_mode == mode
    model.eval()
    rebuilt.eval()
    batch = make_batch()
    with torch.no_grad():
        assert torch.equal(model(**batch)[0], rebuilt(**batch)[0])


def test_context_dim_mismatch_names_both_dims(models):
    batch = make_batch(context_dim=CONTEXT_DIM + 1)
    with pytest.raises(ContextError, match=rf"utt0.*{CONTEXT_DIM + 1}.*{CONTEXT_DIM}"):
        models["inject"](**batch)


def test_nan_context_names_the_utterance(models):
    batch = make_batch(context_rows=(1, 1))
    batch["context"][1, 0, 3] = float("nan")
    with pytest.raises(ContextError, match="utt1.*NaN"):
        models["distill"](**batch)


@pytest.mark.parametrize(
    "conf, field",
    [
        ({"context_mode": "sometimes"}, "context_mode"),
        ({"context_mode": "inject", "context_dim": None}, "context_dim"),
        ({"context_mode": "distill", "context_dim": 4, "distill_loss": "kl"}, "distill_loss"),
        ({"context_mode": "distill", "context_dim": 4, "distill_fusion_input": "x"},
         "distill_fusion_input"),
    ],
)
def test_model_conf_errors_name_the_field(wav2vec2_dir, tmp_path, conf, field):
    config = train_config(wav2vec2_dir, "none")
    config["model_conf"] = {"ctc_weight": 0.3, **conf}
    with pytest.raises(ValueError, match=f"`{field}`"):
        build_model(config, tmp_path)


def test_train_help_lists_the_context_choices():
    from espnet_gcft.asr.task import GCFTTask

    text = GCFTTask.get_parser().format_help()
    for option in ("--context_fusion {cross_attention}", "--context_student {pooling_fc}",
                   "--context_fusion_conf", "--context_student_conf"):
        assert option in text


@pytest.mark.parametrize("variant", ["baseline", "inject_gt", "gen_inject", "gcaf"])
def test_corpus_gpu_configs_build_and_train(variant, wav2vec2_dir, tmp_path):
    """The shared GPU configs of the corpus recipes, with only the upstream swapped.

    The real upstream (S3PRL ``wav2vec2``) comes from the hub; here the tiny
    local wav2vec2 stands in, every other key of the config is used as is.
    """
    from gcft_helpers import ROOT, TOKENS

    path = ROOT / "egs2" / "TEMPLATE" / "gcft1" / "conf" / "ssl_base" / f"train_{variant}.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["frontend_conf"]["frontend_conf"] == {"upstream": "wav2vec2"}
    config["frontend_conf"]["frontend_conf"] = {
        "upstream": "hf_wav2vec2_custom", "path_or_url": str(wav2vec2_dir)}
    config["freeze_param"] = []  # the prefix names the real upstream's CNN
    config.update(token_type="char", token_list=list(TOKENS))
    model, _ = build_model(config, tmp_path)
    mode = {"baseline": "none", "gcaf": "distill"}.get(variant, "inject")
    assert model.context_mode == mode
    context_dim = config["model_conf"].get("context_dim", CONTEXT_DIM)
    assert mode == "none" or context_dim == 768  # bert-base-uncased, run.sh's text encoder
    batch = make_batch(context_dim=context_dim)
    if mode == "none":
        batch.pop("context"), batch.pop("context_lengths")
    loss, stats, _ = model(**batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert ("loss_ctx" in stats) == (mode == "distill")


def test_the_clis_defer_g2p_and_cleaner_imports_until_used():
    """The ESPnet-side CLIs keep g2p_en / tacotron_cleaner unloaded until a name of theirs is read."""
    import subprocess
    import sys

    code = (
        "import sys, espnet_gcft.bin.gcft_inference;"
        "m = sys.modules['g2p_en']; print(type(m).__name__, 'inflect' in sys.modules);"
        "import g2p_en; print(g2p_en.G2p.__module__);"
        "from espnet2.text.cleaner import TextCleaner; print(TextCleaner(['tacotron'])('Hi 2'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    assert "_DeferredModule False" in lines
    assert lines.index("g2p_en.g2p") == lines.index("_DeferredModule False") + 1
    assert lines[-1] == "HI TWO"


def test_the_python_api_imports_quietly_and_changes_nothing_process_wide():
    """No NLTK download refusals, flash-attn notice or FutureWarnings from ESPnet's imports;
    no stand-ins left in sys.modules, and the caller's own FutureWarnings still shown."""
    import subprocess
    import sys

    code = (
        "import sys, warnings;"
        "import espnet_gcft.asr.inference, espnet_gcft.asr.task;"
        "print('deferred', type(sys.modules.get('g2p_en')).__name__ == '_DeferredModule');"
        "print('stdout kept', sys.stdout is sys.__stdout__, sys.stderr is sys.__stderr__);"
        "warnings.warn('the caller', FutureWarning)"
    )
    proc = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, check=True)
    assert proc.stdout.splitlines() == ["deferred False", "stdout kept True True"], proc.stdout
    assert proc.stderr.count("FutureWarning") == 1 and "FutureWarning: the caller" in proc.stderr
    for noise in ("nltk_data", "Flash Attention"):
        assert noise not in proc.stdout + proc.stderr


def test_distill_training_without_context_is_an_error(models):
    model = models["distill"]
    model.train()
    batch = make_batch()
    batch.pop("context")
    batch.pop("context_lengths")
    with pytest.raises(ContextError, match="`context`"):
        model(**batch)


def test_distill_model_in_eval_mode_ignores_a_teacher_context(models):
    """At inference a gcaf model reads its student, whatever context is around."""
    model = models["distill"]
    model.eval()
    batch = make_batch()
    with torch.no_grad():
        alone, _ = model.encode(batch["speech"], batch["speech_lengths"])
        with model.batch_context(batch["context"], batch["context_lengths"]):
            with_teacher, _ = model.encode(batch["speech"], batch["speech_lengths"])
        other = batch["context"] * -3.0
        with model.batch_context(other, batch["context_lengths"]):
            with_other, _ = model.encode(batch["speech"], batch["speech_lengths"])
    assert torch.equal(alone, with_teacher) and torch.equal(alone, with_other)


def test_loss_ctx_weighs_each_utterance_by_its_frames(models):
    """loss_ctx = mean over utterances with a teacher of (frames x distance); cos_ctx is reported."""
    model = models["distill"]
    predicted = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])
    teacher = torch.tensor([[[1.0, 1.0]], [[0.0, 1.0]], [[5.0, 5.0]]])
    lengths = torch.tensor([1, 1, 0])  # the third utterance has no teacher
    frames = torch.tensor([10, 30, 50])
    kind, model.distill_loss = model.distill_loss, "cosine"
    try:
        loss, cos = model._distillation(predicted, predicted, torch.ones(3, dtype=torch.long),
                                        teacher, lengths, frames)
    finally:
        model.distill_loss = kind
    distance = 1 - 2 ** -0.5  # utterance 0 at 45 degrees, utterance 1 parallel
    assert loss.item() == pytest.approx((10 * distance + 30 * 0.0) / 2)
    assert cos.item() == pytest.approx((2 ** -0.5 + 1.0) / 2)
    model.train()
    _, stats, _ = model(**make_batch())
    assert -1.0 <= float(stats["cos_ctx"]) <= 1.0


def test_fusion_after_the_frontend_feeds_the_encoder(wav2vec2_dir, tmp_path):
    model, _ = build_model(train_config(wav2vec2_dir, "inject", fusion_position="after_frontend"),
                           tmp_path)
    assert model.context_fusion.query.in_features == model.frontend.output_size()
    model.eval()
    batch = make_batch(context_rows=(1, 1))
    with torch.no_grad():
        outputs = []
        for context in (batch["context"], -batch["context"]):
            with model.batch_context(context, batch["context_lengths"]):
                outputs.append(model.encode(batch["speech"], batch["speech_lengths"])[0])
    assert not torch.allclose(outputs[0], outputs[1])
    model.train()
    model.zero_grad()
    loss, _, _ = model(**make_batch())
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.context_fusion.parameters())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("multilayer", [True, False])
def test_every_trainable_parameter_gets_a_gradient(mode, multilayer, wav2vec2_dir, tmp_path):
    """What DDP without --unused_parameters needs: with multilayer_feature false the
    S3PRL featurizer's layer weights never get a gradient, so the model freezes them."""
    config = train_config(wav2vec2_dir, mode)
    config["frontend_conf"]["multilayer_feature"] = multilayer
    model, _ = build_model(config, tmp_path)
    model.train()
    batch = make_batch(context_rows=(1, 1))
    if mode == "none":
        batch.pop("context"), batch.pop("context_lengths")
    loss, _, _ = model(**batch)
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    weights = model.frontend.featurizer.weights
    assert weights.requires_grad == multilayer


def test_centred_distillation_learns_what_the_audio_tells_and_not_the_mean(wav2vec2_dir, tmp_path):
    """distill_center: the student learns the teacher minus the training teachers' running
    mean (buffers saved with the model), with the squared error scaled by the teachers'
    variance, and feeds the fusion its prediction plus that mean. Trained on two kinds of
    audio whose teachers differ by a small offset on a large common vector, it tells
    them apart; a constant student (the mean) would not: its gain is 0."""
    import math

    from espnet_gcft.recipe.diagnostics import student_diagnostics
    from espnet_gcft.recipe.tiny_ssl import build_wav2vec2

    # as the demo's tiny upstream: no masking or dropout, so training sees what decoding sees
    quiet = build_wav2vec2(tmp_path / "ssl", {"vocab_size": 8, "mask_time_prob": 0.0, "layerdrop": 0.0,
                                              "hidden_dropout": 0.0, "attention_dropout": 0.0,
                                              "activation_dropout": 0.0, "feat_proj_dropout": 0.0})
    config = train_config(quiet, "distill", ctc_weight=1.0, distill_center=True, distill_loss="mse",
                          distill_weight=10.0, student_conf={"pooling": "mean"})
    config["encoder_conf"]["dropout_rate"] = 0.0
    model, _ = build_model(config, tmp_path)
    assert {"teacher_sum", "teacher_sqsum", "teacher_count"} <= set(model.state_dict())
    common = torch.full((CONTEXT_DIM,), 3.0)
    offset = torch.zeros(CONTEXT_DIM)
    offset[0] = 1.0

    def batch(kinds):
        t = torch.arange(16000) / 16000
        speech = torch.stack([0.3 * torch.sin(2 * math.pi * (200 if k else 900) * t) for k in kinds])
        context = torch.stack([common + (offset if k else -offset) for k in kinds])[:, None]
        return dict(speech=speech, speech_lengths=torch.full((len(kinds),), 16000),
                    text=torch.tensor([[2, 3]] * len(kinds)), text_lengths=torch.full((len(kinds),), 2),
                    context=context, context_lengths=torch.ones(len(kinds), dtype=torch.long),
                    utt_id=[f"u{i}" for i in range(len(kinds))])

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss, _, _ = model(**batch([0, 1, 1, 0]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.teacher_count.item() == 240
    torch.testing.assert_close(model.teacher_mean(), common)
    model.eval()
    students, teachers = {}, {}
    with torch.no_grad():
        for kind in (0, 1):
            test = batch([kind])
            model.encode(test["speech"], test["speech_lengths"])
            students[f"k{kind}"] = model.last_student_prediction[0].numpy()
            teachers[f"k{kind}"] = test["context"][0].numpy()
    # the prediction lives in the teacher's space: the mean plus the learnt offset
    for kind, sign in ((0, -1.0), (1, 1.0)):
        assert sign * (students[f"k{kind}"][0, 0] - 3.0) > 0.5, students
    records = student_diagnostics(students, teachers, {}, train_mean=common.numpy().astype("float64"))
    # most of what a perfect student gains over the mean (the teachers differ by little)
    best = 100 * (1 - float(torch.nn.functional.cosine_similarity(common, common + offset, dim=0)))
    assert records["student_gain"]["value"] > 0.5 * best
    constant = {u: common.numpy()[None] for u in teachers}
    assert student_diagnostics(constant, teachers, {}, common.numpy())["student_gain"]["value"] == 0.0


def test_rescaled_student_has_the_teachers_spread(wav2vec2_dir, tmp_path):
    """distill_rescale: at inference the fusion reads the mean plus the centred prediction
    scaled so that, over the training utterances, its mean squared size is the teachers'
    variance (a shrunken student is read as a teacher would be); without distill_center
    the option is refused."""
    import math

    from espnet_gcft.recipe.tiny_ssl import build_wav2vec2

    quiet = build_wav2vec2(tmp_path / "ssl", {"vocab_size": 8, "mask_time_prob": 0.0, "layerdrop": 0.0,
                                              "hidden_dropout": 0.0, "attention_dropout": 0.0,
                                              "activation_dropout": 0.0, "feat_proj_dropout": 0.0})
    config = train_config(quiet, "distill", ctc_weight=1.0, distill_center=True, distill_rescale=True,
                          distill_loss="mse", distill_fusion_input="teacher", student_conf={"pooling": "mean"})
    config["encoder_conf"]["dropout_rate"] = 0.0
    model, _ = build_model(config, tmp_path)
    assert {"student_sqsum", "student_count"} <= set(model.state_dict())
    t = torch.arange(16000) / 16000
    speech = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (200, 500, 900)])
    generator = torch.Generator().manual_seed(0)
    context = (torch.full((CONTEXT_DIM,), 2.0) + torch.randn(3, CONTEXT_DIM, generator=generator))[:, None]
    batch = dict(speech=speech, speech_lengths=torch.full((3,), 16000), text=torch.tensor([[2, 3]] * 3),
                 text_lengths=torch.full((3,), 2), context=context,
                 context_lengths=torch.ones(3, dtype=torch.long), utt_id=["a", "b", "c"])
    model.train()
    with torch.no_grad():
        for _ in range(2):  # no update: the predictions counted are the ones decoded below
            model(**batch)
    assert model.student_count.item() == 6
    assert model.student_scale().item() > 1.0  # an untrained student predicts far less than the spread
    model.eval()
    spread = []
    with torch.no_grad():
        for index in range(3):
            model.encode(speech[index:index + 1], torch.tensor([16000]))
            offset = model.last_student_prediction[0] - model.teacher_mean()
            spread.append(offset.pow(2).sum(dim=-1).mean())
    torch.testing.assert_close(torch.stack(spread).mean(), model.teacher_variance(), rtol=1e-3, atol=1e-4)
    config["model_conf"]["distill_center"] = False
    with pytest.raises(ValueError, match="distill_rescale"):
        build_model(config, tmp_path)
