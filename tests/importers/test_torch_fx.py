"""torch.fx importer: hand-worked small modules, torchvision models against the zoo and the
published figures, factories, shared parameters and bad input."""

from __future__ import annotations

import sys

import pytest

from perfmodel.errors import PerfModelError, SpecError, UnknownNameError
from perfmodel.graph.kinds import OpKind
from perfmodel.importers.torch_fx import from_factory, from_torch
from perfmodel.workload.build import build_workload

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

FACTORIES = "tests.importers.fx_factories"


def macs(graph):
    return int(build_workload(graph, batch=1).table["macs"].sum())


def kinds(graph):
    return [str(op.kind) for op in graph.ops]


# --- hand-worked modules ------------------------------------------------------------------

def test_conv_bn_relu_linear_by_hand():
    # conv 3->8, 3x3, pad 1 on 2x3x8x8: 8*3*3*3 + 8 = 224 params;
    #   MACs = N*Co*Ho*Wo*Ci*kh*kw = 2*8*8*8*3*3*3 = 27,648
    # BN: 2*8 = 16 params (running stats are buffers); linear 8->10: 80 + 10 = 90 params,
    #   MACs = 2*8*10 = 160. Total 330 params, 27,808 MACs.
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    g = from_torch(m, torch.zeros(2, 3, 8, 8))
    assert g.params == 330 == sum(p.numel() for p in m.parameters())
    assert macs(g) == 27_648 + 160
    assert kinds(g) == ["conv2d", "batchnorm", "relu", "adaptive_avgpool", "flatten", "linear"]
    assert [op.name for op in g.ops][0] == "0" and g.meta["default_batch"] == 2
    assert g.meta["tracer"] == "torch.fx"


def test_depthwise_and_grouped_conv():
    # depthwise 8->8 (groups 8), 3x3 on 1x8x4x4: weight 8x1x3x3 = 72; MACs 8*4*4*1*9 = 1,152
    # grouped 8->4 (groups 2), 1x1: weight 4x4x1x1 = 16; MACs 4*4*4*4 = 256
    m = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                      nn.Conv2d(8, 4, 1, groups=2, bias=False))
    g = from_torch(m, torch.zeros(1, 8, 4, 4))
    assert (g.params, macs(g)) == (72 + 16, 1_152 + 256)
    assert [op.attr("depthwise") for op in g.ops] == [True, False]
    assert [op.attr("groups") for op in g.ops] == [8, 2]


class SdpaBlock(nn.Module):
    """Pre-norm causal self-attention with F.scaled_dot_product_attention."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads, self.ln = heads, nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, s, d = x.shape
        qkv = self.qkv(self.ln(x)).view(b, s, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return x + self.proj(o.transpose(1, 2).reshape(b, s, d))


def test_sdpa_block_by_hand():
    # x (2, 5, 16), 2 heads of 8. Params: LN 32, qkv 16*48 + 48 = 816, proj 256 + 16 = 272.
    # MACs: qkv 10 tokens*16*48 = 7,680; causal attention 2*B*H*d*pairs with
    # pairs = 5*6/2 = 15: 2*2*2*8*15 = 960; proj 10*16*16 = 2,560. Total 11,200.
    g = from_torch(SdpaBlock(), torch.zeros(2, 5, 16))
    assert (g.params, macs(g)) == (1_120, 11_200)
    (attn,) = [op for op in g.ops if op.kind == OpKind.ATTENTION]
    assert attn.attr("causal") and attn.inputs[0].shape == (2, 2, 5, 8)
    assert g.attention_kernels == "flash"


class MhaBlock(nn.Module):
    def __init__(self, need_weights):
        super().__init__()
        self.need_weights = need_weights
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0] + x


@pytest.mark.parametrize("need_weights, attention", [
    (False, ["attention"]), (True, ["attn_score", "softmax", "attn_context"])])
def test_multihead_attention_by_hand(need_weights, attention):
    # in_proj 16*48 + 48 = 816 params, out_proj 256 + 16 = 272: 1,088.
    # MACs on (2, 5, 16): in_proj 10*16*48 = 7,680; attention 2*B*H*d*S*S = 2*2*2*8*25
    # = 1,600 (or scores 800 + context 800 unfused); out_proj 10*16*16 = 2,560: 11,840.
    g = from_torch(MhaBlock(need_weights), torch.zeros(2, 5, 16))
    assert (g.params, macs(g)) == (1_088, 11_840)
    assert kinds(g) == ["linear", *attention, "linear", "add"]
    assert [op.name for op in g.ops][0] == "attn.in_proj"


def test_export_fallback_gives_the_same_graph_costs():
    # a shape-dependent Python loop defeats symbolic tracing; torch.export unrolls it
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = MhaBlock(False)

        def forward(self, x):
            for _ in range(x.shape[0]):
                x = x * 2
            return self.block(x)

    g = from_torch(Loop(), torch.zeros(2, 5, 16))
    assert g.meta["tracer"] == "torch.export"
    assert (g.params, macs(g)) == (1_088, 11_840)
    assert kinds(g).count("mul") == 2


def test_lstm_matches_the_zoo_lstm_lm():
    from perfmodel.zoo.registry import load_model

    class LM(nn.Module):  # Zaremba et al. medium, as perfmodel.zoo.rnn.lstm_lm
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = nn.Embedding(10000, 650), nn.Linear(650, 10000)
            self.rnn = nn.LSTM(650, 650, 2)

        def forward(self, tokens):
            return self.decoder(self.rnn(self.encoder(tokens))[0])

    with torch.device("meta"):
        m = LM()
    g = from_torch(m, torch.zeros(35, 1, dtype=torch.long, device="meta"))
    zoo = load_model("lstm_lm")
    assert g.params == zoo.params == 19_780_400
    assert macs(g) == int(build_workload(zoo, batch=1, seq=35).table["macs"].sum())
    cells = [op for op in g.ops if op.kind == OpKind.LSTM_CELL]
    assert len(cells) == 2 * 35 and sum(not op.tied for op in cells) == 2


def test_shared_and_unused_parameters_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.block = nn.Embedding(100, 16), nn.Linear(16, 16)
            self.head = nn.Linear(16, 100, bias=False)
            self.head.weight = self.embed.weight      # a tied LM head
            self.aux = nn.Linear(3, 3)                 # never called

        def forward(self, tokens):
            return self.head(self.block(self.block(self.embed(tokens))))

    m = Tied()
    g = from_torch(m, torch.zeros(2, 5, dtype=torch.long))
    # embed 1,600 + block 272 + aux 12; the head and the second block call are tied
    assert g.params == sum(p.numel() for p in m.parameters()) == 1_600 + 272 + 12
    assert [(op.name, op.tied) for op in g.ops] == [
        ("embed", False), ("block", False), ("block_1", True), ("head", True),
        ("aux.unused_parameters", False)]
    # MACs: two 10x16x16 linears and the 10x16x100 head
    assert macs(g) == 2 * 2_560 + 16_000
    assert g.inputs[0].role == "index"


def test_unknown_calls_are_listed_not_priced_at_zero():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.erf(F.interpolate(x, scale_factor=2))

    g = from_torch(Odd(), torch.zeros(1, 2, 4, 4))
    assert build_workload(g, batch=1).unsupported == ("erf", "interpolate")
    assert kinds(g) == ["torch.nn.functional.interpolate", "torch.erf"]
    assert [op.outputs[0].shape for op in g.ops] == [(1, 2, 8, 8)] * 2


def test_module_modes_are_restored():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5)).train()
    from_torch(m, torch.zeros(1, 4))
    assert all(sub.training for sub in m.modules())


# --- torchvision: torch, fx, zoo and published figures agree ------------------------------

@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16",
                                  "convnext_tiny"])
def test_torchvision_matches_zoo_and_published(name):
    torchvision = pytest.importorskip("torchvision")
    from perfmodel.zoo.registry import load_model, references
    with torch.device("meta"):  # no weights allocated; shapes are all that is read
        m = torchvision.models.get_model(name)
    g = from_torch(m, torch.zeros(1, 3, 224, 224, device="meta"))
    zoo, ref = load_model(name), references()[name]
    assert g.params == sum(p.numel() for p in m.parameters()) == zoo.params == ref["params"]
    assert macs(g) == macs(zoo)
    assert macs(g) == pytest.approx(ref["macs"], rel=1e-3)  # published to 3 decimals
    assert build_workload(g, batch=1).unsupported == ()


def test_torchvision_through_export_too():
    torchvision = pytest.importorskip("torchvision")
    from perfmodel.zoo.registry import load_model
    g = from_torch(torchvision.models.mobilenet_v2(), torch.zeros(1, 3, 224, 224),
                   method="export")
    assert g.meta["tracer"] == "torch.export"
    assert (g.params, macs(g)) == (3_504_872, macs(load_model("mobilenet_v2")))


# --- factories and bad input --------------------------------------------------------------

def test_from_factory_image_and_tokens():
    g = from_factory(f"{FACTORIES}:tiny_cnn", batch=2)
    # the hand-worked net on 2x3x224x224: conv 2*8*224*224*27 MACs, linear 2*8*10
    assert (g.params, macs(g)) == (330, 2 * 8 * 224 * 224 * 27 + 160)
    assert g.name == f"{FACTORIES}:tiny_cnn" and g.meta["default_batch"] == 2
    t = from_factory(f"{FACTORIES}:token_lstm", batch=2, seq=7)
    assert t.meta["default_seq"] == 7 and t.inputs[0].shape == (2, 7)
    # LSTM 2 tokens x 7 steps: 4*32*(16+32) MACs per token-step; head 14*32*100
    assert macs(t) == 14 * 4 * 32 * 48 + 14 * 32 * 100


def test_from_factory_uses_the_modules_example_inputs(tmp_path, monkeypatch):
    (tmp_path / "fx_hooked.py").write_text(
        "import torch\n"
        "def model():\n    return torch.nn.Linear(6, 2)\n"
        "def example_inputs(batch, seq):\n    return (torch.zeros(batch, seq or 3, 6),)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    g = from_factory("fx_hooked:model", batch=4, seq=5)
    assert g.inputs[0].shape == (4, 5, 6) and macs(g) == 20 * 6 * 2


@pytest.mark.parametrize("spec, error, words", [
    ("no_such_pkg.models:build", SpecError, "import no_such_pkg.models failed"),
    (f"{FACTORIES}:nope", UnknownNameError, "has no factory 'nope'"),
    (f"{FACTORIES}:NOT_CALLABLE", UnknownNameError, "has no factory"),
    (f"{FACTORIES}:raises", SpecError, "RuntimeError: no weights here"),
    (f"{FACTORIES}:not_a_module", SpecError, "not a torch.nn.Module"),
    (f"{FACTORIES}:token_lstm", SpecError, "cannot trace"),  # an image into an embedding
    ("no colon", SpecError, "pkg.module:factory"),
])
def test_from_factory_bad_input_is_one_error(spec, error, words):
    with pytest.raises(error, match=words):
        from_factory(spec)


def test_a_module_neither_tracer_takes():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(SpecError, match="torch.fx: .*; torch.export: "):
        from_torch(DataDependent(), torch.zeros(1, 3))


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(PerfModelError, match=r'pip install "\.\[torch\]"'):
        from_torch(object(), ())


def test_cli_prices_a_factory_and_refuses_a_broken_one(capsys):
    from perfmodel.cli.main import main
    assert main(["roofline", f"{FACTORIES}:tiny_cnn", "--hw", "a100"]) == 0
    assert main(["roofline", f"{FACTORIES}:raises", "--hw", "a100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no weights here" in err[0]
