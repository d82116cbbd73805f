import numpy as np
import pytest
import scipy.sparse as sp
import torch

from gatedrec.data import Modality
from gatedrec.errors import GatedRecError
from gatedrec.models.fusion import ModalityFusion, product_precision


def modalities(n_items=6, present_visual=None):
    rng = np.random.default_rng(0)
    visual = Modality(rng.standard_normal((n_items, 5)).astype(np.float32), np.ones(n_items, dtype=bool))
    if present_visual is not None:
        visual.present = present_visual
        visual.features[~present_visual] = 0
    text = Modality(rng.standard_normal((n_items, 3)).astype(np.float32), np.ones(n_items, dtype=bool))
    return {"visual": visual, "text": text}


def test_element_gate_is_in_open_unit_interval_and_weights_sum_to_one():
    torch.manual_seed(0)
    fusion = ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="l2")
    content, weights = fusion.fused()
    assert content.shape == (6, 4)
    assert weights.shape == (6, 2, 4)
    assert torch.all((weights > 0) & (weights < 1))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(6, 4))
    projected = fusion.projected()
    torch.testing.assert_close(content, weights[:, 0] * projected[:, 0] + (1 - weights[:, 0]) * projected[:, 1])
    torch.testing.assert_close(fusion(), content)  # the two-modality shortcut gives the same vectors


def test_two_modality_gate_is_a_sigmoid_of_an_affine_map():
    fusion = ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="none")
    projected = fusion.projected()
    logits = projected.flatten(1) @ fusion.gate.weight.T + fusion.gate.bias
    torch.testing.assert_close(fusion.weights(projected)[:, 0], torch.sigmoid(logits))


def interactions(n_users=5, n_items=6):
    rng = np.random.default_rng(1)
    return sp.csr_matrix((rng.random((n_users, n_items)) < 0.5).astype(np.float32))


@pytest.mark.parametrize("gate", ["element", "scalar"])
@pytest.mark.parametrize("dim", [4, 2])  # 5- and 3-d features: both narrower than 2 dim, then only the text
@pytest.mark.parametrize("agreement", [False, True])
def test_two_modality_gate_backward_gives_autograds_gradients(gate, dim, agreement):
    fusion = ModalityFusion(modalities(), dim=dim, fusion="gate", gate=gate, feature_norm="l2",
                            interactions=interactions() if agreement else None)
    upstream = torch.randn(6, dim, generator=torch.Generator().manual_seed(0))
    if agreement:
        torch.nn.init.normal_(fusion.agreement_gate.weight)  # zero at the start: give the offset something to do

    def gradients(content):
        fusion.zero_grad()
        (content * upstream).sum().backward()
        return {name: parameter.grad.clone() for name, parameter in fusion.named_parameters()}

    by_hand, by_autograd = gradients(fusion()), gradients(fusion.fused()[0])
    assert set(by_hand) == {"projections.0.weight", "projections.0.bias", "projections.1.weight",
                            "projections.1.bias", "gate.weight", "gate.bias"} | ({"agreement_gate.weight"} if agreement
                                                                                 else set())
    torch.testing.assert_close(fusion(), fusion.fused()[0])
    for name, grad in by_autograd.items():
        torch.testing.assert_close(by_hand[name], grad, msg=name)


@pytest.mark.parametrize("fusion_name, gate, present_visual", [
    ("gate", "element", None), ("gate", "scalar", None), ("gate", "element", [True, False] * 3),
    ("concat", "element", [True, False] * 3), ("mean", "element", None),
])
def test_content_of_some_items_is_theirs_in_all_items_content_with_the_same_gradients(fusion_name, gate,
                                                                                       present_visual):
    present = None if present_visual is None else np.array(present_visual)
    fusion = ModalityFusion(modalities(present_visual=present), dim=4, fusion=fusion_name, gate=gate,
                            feature_norm="l2")
    if present is not None:  # the absence offsets take part
        torch.nn.init.normal_(fusion.absent, generator=torch.Generator().manual_seed(1))
    rows = torch.tensor([4, 1, 4, 0])
    upstream = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))

    def content_and_gradients(content):
        fusion.zero_grad()
        (content * upstream).sum().backward()
        return content.detach(), {name: parameter.grad.clone() for name, parameter in fusion.named_parameters()}

    some, every = content_and_gradients(fusion(rows)), content_and_gradients(fusion()[rows])
    torch.testing.assert_close(some[0], every[0])
    for name, grad in every[1].items():
        torch.testing.assert_close(some[1][name], grad, msg=name)


def test_transposed_feature_copies_are_kept_only_once_a_pass_records_gradients():
    """The backward's contiguous transposes of the feature tables: none for evaluation or for a batch's rows
    (at 200,000 items they would hold 100 MB that only content_updates=all's backward reads)."""
    fusion = ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="l2")
    with torch.no_grad():
        evaluated = fusion()
    fusion(torch.tensor([1, 3])).sum().backward()
    assert "transposed" not in fusion.copies
    trained = fusion()
    assert "transposed" in fusion.copies
    torch.testing.assert_close(evaluated, trained.detach())


def test_agreement_moves_the_gate_of_the_items_whose_modality_contradicts_their_interactions():
    """Items bought together share a cluster; the visual features of half the items are random: their visual
    agreement is lower, and a positive agreement weight lowers their visual share."""
    rng = np.random.default_rng(0)
    n_items, n_clusters = 200, 10
    cluster = np.arange(n_items) % n_clusters
    centres = rng.standard_normal((n_clusters, 16))
    visual = centres[cluster] + 0.3 * rng.standard_normal((n_items, 16))
    corrupted = rng.random(n_items) < 0.5
    visual[corrupted] = rng.standard_normal((corrupted.sum(), 16)) * visual.std(axis=0) + visual.mean(axis=0)
    users = np.repeat(np.arange(300), 6)
    items = (rng.integers(0, n_clusters, 300)[:, None] + n_clusters * rng.integers(0, n_items // n_clusters,
                                                                                     (300, 6))).ravel()
    bought = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(300, n_items))
    text = centres[cluster] + 0.3 * rng.standard_normal((n_items, 16))
    present = np.ones(n_items, dtype=bool)
    features = {"visual": Modality(visual.astype(np.float32), present), "text": Modality(text.astype(np.float32),
                                                                                         present)}
    fusion = ModalityFusion(features, dim=4, fusion="gate", gate="scalar", feature_norm="l2", interactions=bought)
    agreement = fusion.agreement.numpy()
    assert agreement[corrupted, 0].mean() < agreement[~corrupted, 0].mean() - 1.0
    assert abs(agreement[:, 1].mean()) < 1e-5 and abs(agreement[:, 1].std() - 1) < 1e-3  # standardised
    with torch.no_grad():
        fusion.agreement_gate.weight.fill_(0.0)
        fusion.agreement_gate.weight[0, 0] = 2.0
    visual_share = fusion.modality_shares()["visual"]
    assert visual_share[corrupted].mean() < visual_share[~corrupted].mean() - 0.2


def test_scalar_gate_has_one_weight_per_modality():
    fusion = ModalityFusion(modalities(), dim=4, fusion="gate", gate="scalar", feature_norm="l2")
    content, weights = fusion.fused()
    assert weights.shape == (6, 2, 1)
    torch.testing.assert_close(fusion(), content)


def test_missing_modality_is_masked_out_not_filled():
    present = np.array([True, False, True, False, True, True])
    fusion = ModalityFusion(modalities(present_visual=present), dim=4, fusion="gate", gate="element", feature_norm="l2")
    content, weights = fusion.fused()
    assert torch.all(weights[~torch.from_numpy(present), 0] == 0)
    assert torch.all(weights[~torch.from_numpy(present), 1] == 1)
    projected = fusion.projected()
    torch.testing.assert_close(content[1], projected[1, 1])
    shares = fusion.modality_shares()
    assert shares["visual"][1] == 0 and shares["text"][1] == 1


@pytest.mark.parametrize("fusion_name", ["mean", "sum", "concat", "visual-only", "text-only"])
def test_ablation_fusions_give_item_vectors(fusion_name):
    fusion = ModalityFusion(modalities(), dim=4, fusion=fusion_name, gate="element", feature_norm="l2")
    content = fusion()
    assert content.shape == (6, 4)
    if fusion_name == "visual-only":
        torch.testing.assert_close(content, fusion.projected()[:, 0])


def test_unknown_fusion_is_refused():
    with pytest.raises(GatedRecError, match="fusion 'audio-only' is unknown"):
        ModalityFusion(modalities(), dim=4, fusion="audio-only", gate="element", feature_norm="l2")


def test_wide_features_are_reduced_to_principal_components():
    rng = np.random.default_rng(3)
    signal = rng.standard_normal((40, 2)) @ rng.standard_normal((2, 30))
    wide = Modality((signal + 0.01 * rng.standard_normal((40, 30))).astype(np.float32), np.ones(40, dtype=bool))
    torch.manual_seed(0)
    fusion = ModalityFusion({"visual": wide}, dim=4, fusion="gate", gate="element", feature_norm="none",
                            max_feature_dim=3)
    assert fusion.projections[0].in_features == 3
    reduced = fusion.features_0.numpy()
    centred = wide.features - wide.features.mean(axis=0)
    kept = (reduced ** 2).sum() / (centred ** 2).sum()
    assert kept > 0.99  # two latent directions carry almost all variance, and they are kept


def test_absence_offset_reaches_only_items_without_the_modality():
    present = np.array([True, False, True, False, True, True])
    fusion = ModalityFusion(modalities(present_visual=present), dim=4, fusion="gate", gate="element", feature_norm="l2")
    before = fusion()
    with torch.no_grad():
        fusion.absent[0] = 1.0  # the visual modality's absence offset
    after = fusion()
    torch.testing.assert_close(after - before, torch.from_numpy(~present).float().unsqueeze(1).expand(6, 4))
    assert not hasattr(ModalityFusion(modalities(), 4, "gate", "element", "l2"), "absent")


def test_bfloat16_products_give_float32_content_close_to_full_precision():
    torch.manual_seed(0)
    full = ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="l2")
    half = ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="l2", precision="bfloat16")
    half.load_state_dict(full.state_dict())
    content = half()
    assert content.dtype == torch.float32
    torch.testing.assert_close(content, full(), atol=2e-2, rtol=2e-2)
    assert not torch.equal(content, full())
    content.sum().backward()
    full().sum().backward()
    for (name, grad), reference in zip(half.named_parameters(), full.parameters()):
        assert grad.grad.dtype == torch.float32
        torch.testing.assert_close(grad.grad, reference.grad, atol=5e-2, rtol=5e-2, msg=name)
    for name, share in half.modality_shares().items():
        np.testing.assert_allclose(share, full.modality_shares()[name], atol=2e-2)
    with torch.no_grad():  # loading other features into the buffers is seen by the products
        half.features_0.mul_(-1.0)
        full.features_0.mul_(-1.0)
    torch.testing.assert_close(half(), full(), atol=2e-2, rtol=2e-2)
    with pytest.raises(GatedRecError, match="content_precision 'half'"):
        ModalityFusion(modalities(), dim=4, fusion="gate", gate="element", feature_norm="l2", precision="half")


def test_auto_precision_is_bfloat16_only_on_a_cpu_with_native_bfloat16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert product_precision("auto", "cpu") == torch.bfloat16
    assert product_precision("auto", "cuda") == torch.float32
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert product_precision("auto", "cpu") == torch.float32
    assert product_precision("bfloat16", "cuda") == torch.bfloat16
