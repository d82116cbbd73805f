import json

import numpy as np
import pytest
import torch

from gatedrec.config import DataConfig, RunConfig
from gatedrec.data import load_data, load_mmrec
from gatedrec.errors import GatedRecError
from gatedrec.models import graph
from gatedrec.models.rlmultimodalrec import _WithFreshRows
from gatedrec.training import Trainer
from gatedrec.training.trainer import build_model, build_optimizer, epoch_start_scorer, resolve_device


def config_for(model, **train):
    settings = {"epochs": 6, "patience": 20, "seed": 1, "batch_size": 256} | train
    return RunConfig.for_model(model, **settings)


@pytest.mark.parametrize(
    "model", ["bpr", "lightgcn", "vbpr", "mmgcn", "grcn", "lattice", "freedom", "bm3", "rlmultimodalrec"]
)
def test_models_learn_on_generated_data(small_generated, model):
    metrics = Trainer(config_for(model, epochs=15), small_generated.dataset, quiet=True).fit()
    assert metrics["epochs_run"] == 15
    assert 0 < metrics["test"]["recall@20"] <= 1
    first, best = metrics["history"][0]["recall@20"], max(h["recall@20"] for h in metrics["history"])
    assert best > first
    metric_names = ("recall", "ndcg", "precision", "map", "hit")
    assert set(metrics["test"]) >= {f"{m}@{k}" for m in metric_names for k in (5, 10, 20, 50)}


def test_edge_dropout_trains_on_subgraphs_and_evaluates_on_the_full_graph(small_generated):
    config = config_for("lightgcn", epochs=4)
    config.apply({"edge_dropout": 0.5})
    trainer = Trainer(config, small_generated.dataset, quiet=True)
    metrics = trainer.fit()
    assert trainer.model.epoch_adjacency is not trainer.model.adjacency
    assert metrics["test"]["recall@20"] > 0


def test_freedom_modality_loss_trains_the_projections(small_generated):
    config = config_for("freedom", epochs=2)
    config.apply({"modality_loss_weight": 0.1})
    trainer = Trainer(config, small_generated.dataset, quiet=True)
    before = [projection.weight.detach().clone() for projection in trainer.model.raw.projections]
    trainer.fit()
    assert all(not torch.equal(b, p.weight) for b, p in zip(before, trainer.model.raw.projections))


def test_lattice_learns_its_item_graph_once_per_epoch(small_generated):
    trainer = Trainer(config_for("lattice", epochs=1), small_generated.dataset, quiet=True)
    model = trainer.model
    before = [projection.weight.detach().clone() for projection in model.projections]
    trainer.fit()
    assert all(not torch.equal(b, p.weight) for b, p in zip(before, model.projections))
    assert not model.item_graph.values.requires_grad  # held fixed after the epoch's first batch


def test_mmgcn_keeps_text_raw_and_projects_the_other_modalities(small_generated):
    model = Trainer(config_for("mmgcn"), small_generated.dataset, quiet=True).model
    kinds = {name: network.projection is not None
             for name, network in zip(small_generated.dataset.modalities, model.networks)}
    assert kinds == {"visual": True, "text": False}


def test_grcn_prunes_edges_with_negative_weight(small_generated):
    model = Trainer(config_for("grcn"), small_generated.dataset, quiet=True).model
    with torch.no_grad():
        model.confidence.fill_(-1.0)
        pruned = model.representation()
        model.confidence.fill_(1.0)
        kept = model.representation()
    ids = torch.nn.functional.normalize(model.id_embedding, dim=1)
    width = ids.shape[1]
    assert torch.allclose(pruned[:, :width], ids, atol=1e-6)  # every edge weight clipped to zero
    assert not torch.allclose(kept[:, :width], ids, atol=1e-3)


def test_same_seed_gives_same_numbers(small_generated):
    first = Trainer(config_for("lightgcn"), small_generated.dataset, quiet=True).fit()
    second = Trainer(config_for("lightgcn"), small_generated.dataset, quiet=True).fit()
    assert first["test"] == second["test"]


def test_hard_negatives_learn_and_repeat_with_the_same_seed(small_generated):
    def run():
        config = config_for("lightgcn", epochs=10)
        config.apply({"negative_candidates": 4})
        return Trainer(config, small_generated.dataset, quiet=True).fit()

    first, second = run(), run()
    assert first["history"] == second["history"]
    assert max(h["recall@20"] for h in first["history"]) > first["history"][0]["recall@20"]


def test_hard_negatives_are_scored_with_the_validation_pass_embeddings(small_generated):
    """After a validation pass the model has not changed, so its embeddings score the next epoch's
    negatives: one full forward pass per epoch fewer, the same numbers."""

    def run(reuse: bool):
        config = config_for("rlmultimodalrec", epochs=4)
        config.apply({"negative_candidates": 4})
        trainer = Trainer(config, small_generated.dataset, quiet=True)
        passes, embeddings, train_epoch = [], trainer.model.embeddings, trainer.train_epoch
        trainer.model.embeddings = lambda: passes.append(1) or embeddings()
        if not reuse:
            trainer.train_epoch = lambda *args: setattr(trainer, "validated_tables", None) or train_epoch(*args)
        return trainer.fit(), len(passes)

    (reused, reused_passes), (recomputed, recomputed_passes) = run(True), run(False)
    assert reused["history"] == recomputed["history"]
    assert reused["test"] == recomputed["test"]
    assert recomputed_passes - reused_passes == 3  # every epoch after the first


def test_negative_candidates_below_one_is_refused():
    with pytest.raises(GatedRecError, match="'negative_candidates' = 0 is not allowed: it must be >= 1"):
        config_for("lightgcn").apply({"negative_candidates": 0})


def test_run_folder_holds_config_log_checkpoint_and_metrics(tmp_path, small_generated):
    metrics = Trainer(config_for("rlmultimodalrec"), small_generated.dataset, tmp_path / "run", quiet=True).fit()
    for name in ("config.yaml", "train.log", "checkpoints/best.pt", "checkpoints/last.pt", "item_shares.tsv"):
        assert (tmp_path / "run" / name).exists(), name
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test"] == metrics["test"]
    assert set(saved["modality_shares"]) == {"visual", "text"}
    assert 0 < saved["modality_shares"]["visual"]["mean"] < 1
    assert 1 <= saved["best_epoch"] <= saved["epochs_run"]


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, small_generated, monkeypatch):
    config = config_for("rlmultimodalrec", epochs=8)
    uninterrupted = Trainer(config, small_generated.dataset, tmp_path / "full", quiet=True).fit()

    saves = {"count": 0}
    original = Trainer.save_checkpoint

    def crash_after_three_epochs(self, name, with_state):
        original(self, name, with_state)
        if name == "last.pt":
            saves["count"] += 1
            if saves["count"] == 3:
                raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", crash_after_three_epochs)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config_for("rlmultimodalrec", epochs=8), small_generated.dataset, tmp_path / "cut", quiet=True).fit()
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    resumed = Trainer(config_for("rlmultimodalrec", epochs=8), small_generated.dataset, tmp_path / "cut",
                      quiet=True).fit(
        resume=True
    )
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["test"] == uninterrupted["test"]


def test_optimizer_merges_parameter_groups_with_the_same_settings(small_generated):
    config = config_for("rlmultimodalrec")
    model = Trainer(config, small_generated.dataset, quiet=True).model
    optimizer = build_optimizer(model, 0.01)
    assert [group["weight_decay"] for group in optimizer.param_groups] == [0, 0.01]  # projections and gate as one
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    config.apply({"gate_weight_decay": 0.1, "content_lr_scale": 2.0})
    model = Trainer(config, small_generated.dataset, quiet=True).model
    settings = [(group["weight_decay"], group["lr"]) for group in build_optimizer(model, 0.01).param_groups]
    assert settings == [(0, 0.01), (0.01, 0.02), (0.1, 0.02)]


def test_resume_with_an_optimizer_state_of_other_parameters_is_refused(tmp_path, small_generated):
    Trainer(config_for("rlmultimodalrec", epochs=1), small_generated.dataset, tmp_path, quiet=True).fit()
    other = config_for("rlmultimodalrec", epochs=2)
    other.apply({"gate_weight_decay": 0.1})  # the gate in a group of its own: three groups, not two
    with pytest.raises(GatedRecError, match="last.pt.*start the run without --resume"):
        Trainer(other, small_generated.dataset, tmp_path, quiet=True).fit(resume=True)


def test_early_stopping_respects_patience(small_generated):
    config = config_for("bpr", epochs=200, patience=2, learning_rate=0.05)
    metrics = Trainer(config, small_generated.dataset, quiet=True).fit()
    assert metrics["epochs_run"] - metrics["best_epoch"] == 2


def test_unknown_config_key_is_refused():
    config = RunConfig.for_model("lightgcn")
    with pytest.raises(GatedRecError, match="unknown config key 'n_layer'"):
        config.apply_assignments(["n_layer=3"])
    with pytest.raises(GatedRecError, match="expects a int"):
        config.apply_assignments(["n_layers=two"])
    config.apply_assignments(["n_layers=3", "reg_weight=1e-3", "epochs=5"])
    assert config.params["n_layers"] == 3 and config.train.epochs == 5


def test_training_on_amazon_scientific_mm_for_a_few_epochs(shared_data):
    dataset = load_mmrec(shared_data / "amazon-scientific-mm")
    metrics = Trainer(config_for("rlmultimodalrec", epochs=3, batch_size=2048), dataset, quiet=True).fit()
    assert metrics["epochs_run"] == 3
    assert metrics["test"]["recall@20"] > 0.02  # popularity-level ranking is reached within a few epochs


def test_cold_items_keep_a_zero_id_embedding(small_folder):
    """Items without training interactions never learn an ID embedding: it starts at zero, its gradient
    (through the item graph) is cleared, and a loaded state cannot bring one back."""
    dataset = load_data(DataConfig(str(small_folder), split="cold-items:0.2"))
    cold = torch.from_numpy(~dataset.warm_items)
    trainer = Trainer(config_for("rlmultimodalrec", epochs=2), dataset, quiet=True)
    trainer.fit()
    item_emb = trainer.model.item_emb
    assert cold.any() and item_emb[cold].abs().max() == 0 and item_emb[~cold].abs().min() > 0
    state = {name: tensor + 1.0 for name, tensor in trainer.model.state_dict().items()}
    trainer.model.load_state_dict(state)
    assert item_emb[cold].abs().max() == 0 and item_emb[~cold].abs().min() > 0


@pytest.mark.parametrize("model, overrides", [
    ("lightgcn", {}), ("freedom", {}), ("lattice", {}), ("rlmultimodalrec", {"content_updates": "all"}),
    ("rlmultimodalrec", {"placement": "late", "content_updates": "all"}),
    ("rlmultimodalrec", {"item_graph_on": "id", "item_graph_mix": "learned", "content_updates": "all"}),
])
def test_batch_rows_are_the_full_passs_rows_with_the_same_gradients(small_generated, model, overrides):
    """A batch computes only its rows (each distinct item once, its item terms added before the repeats are
    gathered); they must be the full pass's rows, and so must the parameters' gradients (with every item's
    content computed at each step: content_updates=batch learns the content through the batch's items alone)."""
    config = config_for(model)
    config.apply(overrides)
    if model == "rlmultimodalrec":  # bfloat16 products round differently for a batch's rows and for all rows
        config.apply({"content_precision": "float32"})
    net = build_model(config, small_generated.dataset)
    net.train()
    generator = torch.Generator().manual_seed(0)
    users = torch.randint(0, net.n_users, (40,), generator=generator)
    items = torch.randint(0, net.n_items, (80,), generator=generator)  # repeats among them, as in a batch
    weights = torch.randn(80, net.item_emb.shape[1], generator=generator)

    def rows_and_gradients(batch_pass: bool) -> tuple[torch.Tensor, torch.Tensor, dict]:
        net.zero_grad(set_to_none=True)
        net.start_epoch(np.random.default_rng(0))  # each pass as an epoch's first step (LATTICE builds its graph)
        if batch_pass:
            embeddings = net(users, items)
            user_rows, item_rows = embeddings.users, embeddings.items
        else:
            embeddings = net()
            user_rows, item_rows = embeddings.users[users], embeddings.items[items]
        (user_rows.sum() + (item_rows * weights).sum()).backward()
        grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
        return user_rows.detach(), item_rows.detach(), grads

    batch, full = rows_and_gradients(True), rows_and_gradients(False)
    torch.testing.assert_close(batch[0], full[0])
    torch.testing.assert_close(batch[1], full[1])
    assert batch[2].keys() == full[2].keys()
    for name, grad in full[2].items():
        torch.testing.assert_close(batch[2][name], grad, msg=name)


@pytest.mark.parametrize("overrides", [{}, {"gate": "scalar", "placement": "late"}, {"fusion": "concat"}])
def test_batch_content_updates_learn_content_through_the_batchs_items(small_generated, overrides):
    """content_updates=batch: at an epoch's first batch every item's content is fresh, so the loss and the ID
    embeddings' gradients are content_updates=all's, while the content's parameters learn through the batch's
    items alone; a later batch takes the other items' content as it was last computed."""

    def built(updates: str):
        config = config_for("rlmultimodalrec")
        config.apply({**overrides, "content_updates": updates})
        net = build_model(config, small_generated.dataset)
        net.train()
        net.start_epoch(np.random.default_rng(0))
        return net

    batch_net, all_net = built("batch"), built("all")
    all_net.load_state_dict(batch_net.state_dict())
    generator = torch.Generator().manual_seed(0)
    users, positives, negatives = (torch.randint(0, n, (60,), generator=generator)
                                   for n in (batch_net.n_users, batch_net.n_items, batch_net.n_items))
    all_contents = []
    all_net.fusion.register_forward_hook(lambda module, inputs, content: all_contents.append(content))
    all_loss, batch_loss = all_net.loss(users, positives, negatives), batch_net.loss(users, positives, negatives)
    content_grad, = torch.autograd.grad(all_loss, all_contents[0], retain_graph=True)
    all_loss.backward()
    batch_loss.backward()
    torch.testing.assert_close(batch_loss, all_loss)
    for name in ("user_emb", "item_emb"):
        torch.testing.assert_close(getattr(batch_net, name).grad, getattr(all_net, name).grad, msg=name)
    rows = torch.unique(torch.cat([positives, negatives]))
    fusion_parameters = dict(batch_net.fusion.named_parameters())
    through_rows = torch.autograd.grad(batch_net.fusion()[rows], list(fusion_parameters.values()), content_grad[rows])
    for (name, parameter), expected in zip(fusion_parameters.items(), through_rows):
        torch.testing.assert_close(parameter.grad, expected, msg=name)

    def perturbed_content_of(items: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for parameter in fusion_parameters.values():
                parameter.add_(torch.randn_like(parameter, generator=generator))
        return batch_net.content(torch.unique(items)).detach()

    at_start = batch_net.last_content.clone()
    first_items, later_items = (torch.randint(0, batch_net.n_items, (30,), generator=generator) for _ in range(2))
    first, later = perturbed_content_of(first_items), perturbed_content_of(later_items)
    fresh = batch_net.fusion().detach()
    in_later = torch.zeros(batch_net.n_items, dtype=torch.bool).index_fill_(0, later_items, True)
    in_first = torch.zeros_like(in_later).index_fill_(0, first_items, True)
    torch.testing.assert_close(later[in_later], fresh[in_later])
    torch.testing.assert_close(later[in_first & ~in_later], first[in_first & ~in_later])
    torch.testing.assert_close(later[~in_first & ~in_later], at_start[~in_first & ~in_later])
    assert not torch.allclose(first[in_first], at_start[in_first])
    batch_net.eval()
    torch.testing.assert_close(batch_net.content(torch.unique(later_items)), fresh)


def test_hard_negative_scores_are_the_dot_products_of_the_drawn_pairs():
    generator = torch.Generator().manual_seed(0)
    user_table, item_table = torch.randn(30, 8, generator=generator), torch.randn(20, 8, generator=generator)
    users = np.array([4, 4, 29, 0])
    items = np.array([[3, 3, 19, 0], [7, 3, 3, 12], [0, 1, 2, 3]])  # (candidates, users), repeats included
    scores = epoch_start_scorer(None, (user_table, item_table))(users, items)
    expected = np.einsum("kbd,bd->kb", item_table.numpy()[items], user_table.numpy()[users])
    assert scores.shape == (3, 4)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_unknown_content_updates_are_refused():
    message = "'content_updates' = 'sometimes' is not allowed: it must be one of all, batch"
    with pytest.raises(GatedRecError, match=message):
        config_for("rlmultimodalrec").apply({"content_updates": "sometimes"})


@pytest.mark.parametrize("model", ["lightgcn", "freedom", "rlmultimodalrec"])
def test_cuda_side_sparse_kernels_give_the_cpu_kernels_numbers(small_generated, model, monkeypatch):
    """CUDA takes torch.sparse's products and no padded rows; run those on the CPU, a training step and a full
    pass must give what the CPU's own kernels give."""

    def trained_embeddings() -> tuple[torch.Tensor, torch.Tensor]:
        config = config_for(model)
        net = build_model(config, small_generated.dataset)
        optimizer = build_optimizer(net, config.train.learning_rate)
        generator = torch.Generator().manual_seed(0)
        users = torch.randint(0, net.n_users, (64,), generator=generator)
        positives, negatives = (torch.randint(0, net.n_items, (64,), generator=generator) for _ in range(2))
        for _ in range(3):
            optimizer.zero_grad()
            net.loss(users, positives, negatives).backward()
            optimizer.step()
        return net.embeddings()

    on_cpu_kernels = trained_embeddings()
    monkeypatch.setattr(graph, "cpu_kernels", lambda tensor: False)
    on_cuda_kernels = trained_embeddings()
    for ours, theirs in zip(on_cpu_kernels, on_cuda_kernels):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_unusable_devices_are_refused_with_what_to_use(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(GatedRecError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GatedRecError, match="sees no CUDA device; use --device cpu"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(GatedRecError, match="sees 1 CUDA device"):
        resolve_device("cuda:1")


@pytest.mark.parametrize("with_base", [True, False])
def test_fresh_rows_written_in_place_give_index_copys_values_and_gradients(with_base):
    generator = torch.Generator().manual_seed(0)
    kept, base = torch.randn(9, 4, generator=generator), torch.randn(9, 4, generator=generator, requires_grad=True)
    fresh = torch.randn(3, 4, generator=generator, requires_grad=True)
    rows, upstream = torch.tensor([1, 4, 8]), torch.randn(9, 4, generator=generator)
    expected = kept.index_copy(0, rows, fresh) + (base if with_base else 0)
    expected_grads = torch.autograd.grad(expected, [fresh, base] if with_base else [fresh], upstream)
    written = _WithFreshRows.apply(fresh, rows, kept, base if with_base else None)
    grads = torch.autograd.grad(written, [fresh, base] if with_base else [fresh], upstream)
    torch.testing.assert_close(written, expected, rtol=0, atol=0)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=0, atol=0)
    torch.testing.assert_close(kept[rows], fresh.detach(), rtol=0, atol=0)  # kept for the next step
    if not with_base:
        assert written.data_ptr() != kept.data_ptr()  # a later step's write must not change this step's table


def test_the_default_gate_gives_items_different_shares(small_generated):
    """With a weight decay on the gate (1e-2, the default until 2026-12-08) every item got the same share;
    the default gate (no decay, the modalities' agreement with the interactions as input) differs by item."""
    shares = {}
    for label, overrides in (("default", {}), ("decayed", {"gate_weight_decay": 1e-2, "gate_agreement": False})):
        config = config_for("rlmultimodalrec", epochs=15)
        config.apply(overrides)
        trainer = Trainer(config, small_generated.dataset, quiet=True)
        trainer.fit()
        shares[label] = trainer.model.explain()["visual"]
    assert shares["default"].std() > 0.01
    assert shares["decayed"].std() < 0.25 * shares["default"].std()
