"""The training loop: BPR batches, evaluation on valid, early stopping, checkpoints and resume.

A run folder holds ``config.yaml``, ``train.log``, ``checkpoints/last.pt`` (everything needed to resume),
``checkpoints/best.pt`` (the model at the best valid Recall@20) and, when training ends, ``metrics.json`` and
``serving/`` (what gatedrec.serving needs to recommend without the data folder).
Each epoch draws its randomness from (seed, epoch) alone, so a resumed run ends exactly where an
uninterrupted run with the same seed ends.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gatedrec.config import RunConfig
from gatedrec.data import Dataset
from gatedrec.distributed import join_group
from gatedrec.errors import GatedRecError
from gatedrec.evaluation import Evaluator
from gatedrec.io import write_atomic, write_json
from gatedrec.models import RecommenderModel, model_class
from gatedrec.models.graph import csr_tensor
from gatedrec.progress import console, progress_bar
from gatedrec.runtime import configure_torch
from gatedrec.serving.artifact import export_run
from gatedrec.serving.catalog_info import data_encoders
from gatedrec.training.sampling import NegativeSampler, PairScorer

VALID_METRIC = "recall@20"
REPORTED_METRICS = ("recall@20", "ndcg@20")
Tables = tuple[torch.Tensor, torch.Tensor]  # final user and item embeddings


@dataclass
class TrainingState:
    next_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    evals_since_best: int = 0
    train_seconds: float = 0.0
    eval_seconds: list[float] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)


def build_model(config: RunConfig, dataset: Dataset) -> RecommenderModel:
    device = resolve_device(config.train.device)
    torch.manual_seed(config.train.seed)
    model = model_class(config.model)(dataset, config.params, device)
    return model.to(device)


def build_optimizer(model: RecommenderModel, learning_rate: float) -> torch.optim.Adam:
    """Adam over the model's parameter groups, groups with the same settings merged: the fused kernel then
    updates them in one call (each call costs about as much as updating a few hundred thousand numbers)."""
    merged: dict[tuple, dict] = {}
    for group in model.parameter_groups():
        settings = {"weight_decay": 0.0} | {key: value for key, value in group.items() if key not in ("params", "lr_scale")}
        settings["lr"] = learning_rate * group.get("lr_scale", 1.0)
        key = tuple(sorted(settings.items()))
        merged.setdefault(key, {**settings, "params": []})["params"] += list(group["params"])
    # the fused kernel updates all parameters in one pass: several times faster than the default on CPU
    return torch.optim.Adam(list(merged.values()), lr=learning_rate, fused=True)


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GatedRecError(f"--device {name} was asked for, but PyTorch sees no CUDA device; use --device cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GatedRecError(f"unknown device '{name}'; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is not None and device.index >= (count := torch.cuda.device_count()):
        raise GatedRecError(f"--device {name} was asked for, but PyTorch sees {count} CUDA device(s), numbered from 0")
    return device


@torch.no_grad()
def epoch_start_scorer(model: RecommenderModel, tables: Tables | None = None) -> PairScorer:
    """Scores by the model as it stands at the epoch's start, for choosing hard negatives: one full forward
    pass per epoch instead of one per batch, the scores at most one epoch stale; none at all when the
    final embeddings of the model as it stands are at hand (``tables``, from the validation pass that
    ended the previous epoch). Scored on the CPU (the tables copied once from a GPU)."""
    if tables is None:
        model.eval()
        tables = model.embeddings()
    user_table, item_table = (table.detach().cpu() for table in tables)
    item_columns = item_table.t()

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The dot products of the drawn pairs alone, as a sampled product (each pair reads its item's row
        where it lies): a third less time than gathering the items' rows into one array first, a cache miss
        each, and then multiplying."""
        n_candidates, n_users = items.shape
        pairs = sparse_pattern(np.ascontiguousarray(items.T).reshape(-1), n_users, n_candidates, len(item_table))
        scores = torch.sparse.sampled_addmm(pairs, user_table.index_select(0, torch.from_numpy(users)),
                                            item_columns, beta=0.0)
        return scores.values().view(n_users, n_candidates).t().numpy()

    return score


def sparse_pattern(columns: np.ndarray, n_rows: int, per_row: int, n_columns: int) -> torch.Tensor:
    """An (n_rows, n_columns) CSR tensor with ``per_row`` entries per row at ``columns`` (row by row), valued 0."""
    starts = torch.arange(0, n_rows * per_row + 1, per_row)
    return csr_tensor(starts, torch.from_numpy(columns), torch.zeros(len(columns)), (n_rows, n_columns))


def epoch_batches(model: RecommenderModel, sampler: NegativeSampler, batch_size: int, seed: int, epoch: int,
                  tables: Tables | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Starts an epoch (the hard negatives' scorer, train mode, the model's per-epoch resampling) and gives
    its batches; all randomness from (seed, epoch), so a resumed run draws what an uninterrupted one did.
    ``tables``: the model's final embeddings as it stands, when already computed."""
    candidates = model.negative_candidates
    score = epoch_start_scorer(model, tables) if candidates > 1 else None
    model.train()
    model.start_epoch(np.random.default_rng([seed, epoch, 1]))
    return sampler.epoch(batch_size, np.random.default_rng([seed, epoch]), candidates, score, torch.get_num_threads())


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Trainer:
    def __init__(self, config: RunConfig, dataset: Dataset, out_dir: str | Path | None = None, quiet: bool = False):
        self.config, self.dataset = config, dataset
        self.out_dir = Path(out_dir) if out_dir is not None else None
        configure_torch(config.train.threads, dataset.train.nnz)
        self.group = join_group(resolve_device(config.train.device))
        self.device = self.group.device
        self.quiet = quiet or not self.group.is_main
        self.writes = self.out_dir is not None and self.group.is_main
        self.model = build_model(config, dataset)
        self.optimizer = build_optimizer(self.model, config.train.learning_rate) if self.model.trainable else None
        self.sampler = NegativeSampler(dataset.train)
        self.evaluator = Evaluator(dataset, mask_valid=config.train.mask_valid, group=self.group)
        self.state = TrainingState()
        self.best_in_memory: dict | None = None
        self.validated_tables: Tables | None = None  # the last validation's embeddings, until training resumes

    # ---- run folder -------------------------------------------------------------------------
    def path(self, name: str) -> Path | None:
        return self.out_dir / name if self.out_dir is not None else None

    def log(self, line: str) -> None:
        if not self.quiet:
            console.print(line)
        if self.writes:
            with open(self.out_dir / "train.log", "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def save_checkpoint(self, name: str, with_state: bool) -> None:
        if not self.writes:
            if name == "best.pt":
                self.best_in_memory = {key: value.clone() for key, value in self.model.state_dict().items()}
            return
        payload = {"model": self.model.state_dict()}
        if with_state and self.optimizer is not None:
            payload |= {"optimizer": self.optimizer.state_dict(), "state": asdict(self.state)}
        write_atomic(self.out_dir / "checkpoints" / name, lambda tmp: torch.save(payload, tmp))

    def resume(self) -> None:
        path = self.path("checkpoints/last.pt")
        if path is None or not path.exists():
            raise GatedRecError(f"nothing to resume: '{path}' does not exist; start the run without --resume")
        payload = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(payload["model"])
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
        except ValueError as error:
            raise GatedRecError(
                f"cannot resume from '{path}': its optimizer state does not fit this model's parameters ({error}); "
                "it was written by another version or configuration: start the run without --resume"
            ) from None
        self.state = TrainingState(**payload["state"])
        self.log(f"resumed from epoch {self.state.next_epoch}")

    # ---- training -----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        if self.writes:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.out_dir / "config.yaml")
        if resume:
            self.resume()
        train = self.config.train
        if not self.model.trainable:
            self.save_checkpoint("best.pt", with_state=False)
            return self.finish()
        with progress_bar(self.quiet) as progress:
            epochs_task = progress.add_task("epochs", total=train.epochs, completed=self.state.next_epoch, unit="epoch")
            batches_task = progress.add_task("batches", total=self.sampler.n_batches(train.batch_size), unit="batch")
            while self.state.next_epoch < train.epochs and self.state.evals_since_best < train.patience:
                epoch = self.state.next_epoch
                progress.reset(batches_task)
                loss = self.train_epoch(epoch, lambda: progress.advance(batches_task))
                self.state.next_epoch = epoch + 1
                if self.state.next_epoch % train.eval_every == 0 or self.state.next_epoch == train.epochs:
                    self.validate(epoch, loss)
                self.save_checkpoint("last.pt", with_state=True)
                progress.advance(epochs_task)
        return self.finish()

    def train_epoch(self, epoch: int, on_batch) -> float:
        seed = self.config.train.seed
        torch.manual_seed(seed * 1_000_003 + epoch)
        started = time.perf_counter()
        total_loss, n_batches = 0.0, 0
        tables, self.validated_tables = self.validated_tables, None
        for arrays in epoch_batches(self.model, self.sampler, self.config.train.batch_size, seed, epoch, tables):
            batch = [torch.from_numpy(array).to(self.device) for array in self.group.shard(arrays)]
            self.optimizer.zero_grad(set_to_none=True)
            if len(batch[0]):
                loss = self.model.loss(*batch)
                loss.backward()
                total_loss += float(loss.detach())
                n_batches += 1
            self.group.average_gradients(self.model.parameters())
            self.optimizer.step()
            on_batch()
        if not math.isfinite(total_loss):
            raise GatedRecError(
                f"training diverged at epoch {epoch + 1} (loss is {total_loss}); "
                "lower learning_rate or raise reg_weight"
            )
        self.state.train_seconds += time.perf_counter() - started
        return total_loss / max(1, n_batches)

    def validate(self, epoch: int, loss: float) -> None:
        self.model.eval()
        started = time.perf_counter()
        self.validated_tables = self.model.embeddings()
        valid = self.evaluator.evaluate_embeddings(*self.validated_tables, "valid")
        self.state.eval_seconds.append(time.perf_counter() - started)
        score = valid[VALID_METRIC]
        improved = score > self.state.best_score
        if improved:
            self.state.best_score, self.state.best_epoch, self.state.evals_since_best = score, epoch + 1, 0
            self.save_checkpoint("best.pt", with_state=False)
        else:
            self.state.evals_since_best += 1
        self.state.history.append({"epoch": epoch + 1, "loss": loss, **{k: valid[k] for k in REPORTED_METRICS}})
        marker = " *" if improved else ""
        self.log(
            f"epoch {epoch + 1:4d}  loss {loss:.4f}  valid recall@20 {valid['recall@20']:.4f}  "
            f"ndcg@20 {valid['ndcg@20']:.4f}{marker}"
        )

    # ---- results ------------------------------------------------------------------------------
    def load_best(self) -> None:
        path = self.path("checkpoints/best.pt")
        if self.writes and path.exists():
            self.model.load_state_dict(torch.load(path, map_location=self.device, weights_only=False)["model"])
        elif self.best_in_memory is not None:
            self.model.load_state_dict(self.best_in_memory)

    def finish(self) -> dict:
        self.validated_tables = None
        self.load_best()
        self.model.eval()
        valid = self.evaluator.evaluate(self.model, "valid")
        test = self.evaluator.evaluate(self.model, "test")
        epochs_run = self.state.next_epoch
        metrics = {
            "model": self.config.model,
            "data": self.config.data.path or self.dataset.name,
            "seed": self.config.train.seed,
            "params": self.config.params,
            "best_epoch": self.state.best_epoch,
            "epochs_run": epochs_run,
            "train_seconds": self.state.train_seconds,
            "seconds_per_epoch": self.state.train_seconds / max(1, epochs_run),
            "eval_seconds_per_pass": float(np.mean(self.state.eval_seconds)) if self.state.eval_seconds else None,
            "peak_memory_mb": peak_memory_mb(),
            "mask_valid_at_test": self.config.train.mask_valid,
            "processes": self.group.world_size,
            "valid": valid,
            "test": test,
            **self.evaluator.evaluate_cold_warm(self.model),
            "modality_shares": summarize_shares(self.model.explain()),
            "history": self.state.history,
        }
        if self.writes:
            write_json(self.out_dir / "metrics.json", metrics)
            write_item_shares(self.out_dir / "item_shares.tsv", self.model.explain())
            export_run(self.model, self.dataset, self.config.params, self.config.data.path or None, self.out_dir,
                       data_encoders(self.config.data.path))
        self.log(
            f"best epoch {self.state.best_epoch}: test recall@20 {test['recall@20']:.4f}  ndcg@20 {test['ndcg@20']:.4f}"
        )
        return metrics


def summarize_shares(shares: dict[str, np.ndarray]) -> dict:
    return {
        name: {"mean": float(values.mean()), "std": float(values.std()), "median": float(np.median(values))}
        for name, values in shares.items()
    }


def write_item_shares(path: Path, shares: dict[str, np.ndarray]) -> None:
    if not shares:
        return
    names = list(shares)
    lines = ["itemID\t" + "\t".join(f"{name}_share" for name in names)]
    rows = np.stack([shares[name] for name in names], axis=1)
    lines += [f"{item}\t" + "\t".join(f"{value:.6f}" for value in row) for item, row in enumerate(rows)]
    write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
