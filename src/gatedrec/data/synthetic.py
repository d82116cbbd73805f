"""Generated data with planted structure, deterministic given a seed, from hundreds to millions of interactions.

Items belong to latent clusters; a user's taste is a softmax over cluster centres and each interaction
picks a cluster by taste, then an item within it by popularity. Every modality is a noisy linear view of
the item's latent factor, and items fall into as many groups as there are modalities: in group m,
modality m is the clean view and the others are noisy. Each group also shifts every view by its own
offset (as a product category shows in both its photo and its text), so a gate can tell the groups apart
and should learn to trust modality m for the items of group m.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gatedrec.data.dataset import Dataset, Modality
from gatedrec.data.splitting import mmrec_random_split, rank_within_user
from gatedrec.errors import GatedRecError
from gatedrec.data.writer import write_description, write_interactions, write_modality
from gatedrec.io import write_atomic

LATENT_DIM = 16
CLEAN_NOISE = 0.3
NOISY_NOISE = 3.0
MIN_PER_USER = 5
OVERSAMPLE = 2.0
USER_CHUNK = 25_000  # users drawn at a time: the per-chunk CDF tables are users x clusters


@dataclass
class GeneratedData:
    dataset: Dataset
    item_group: np.ndarray  # index of the informative modality for each item
    item_cluster: np.ndarray  # the latent cluster each item belongs to

    @property
    def group_names(self) -> list[str]:
        return list(self.dataset.modalities)


def generate(
    n_users: int,
    n_items: int,
    n_interactions: int,
    modality_dims: dict[str, int] | None = None,
    seed: int = 0,
) -> GeneratedData:
    """Generate a data set; users and items that drew no interaction are dropped, so counts may be a bit lower."""
    _check_sizes(n_users, n_items, n_interactions)
    modality_dims = {"visual": 64, "text": 32} if modality_dims is None else modality_dims
    rng = np.random.default_rng(seed)
    n_clusters = int(np.clip(n_items // 25, 4, 512))
    centres = rng.standard_normal((n_clusters, LATENT_DIM)).astype(np.float32)
    item_cluster = rng.integers(0, n_clusters, n_items)
    item_factors = centres[item_cluster] + 0.5 * rng.standard_normal((n_items, LATENT_DIM)).astype(np.float32)
    users, items = _sample_interactions(rng, n_users, n_items, n_interactions, centres, item_cluster)
    users, items, kept_items = _compact_ids(users, items)
    labels = mmrec_random_split(users, rng)
    item_group = rng.integers(0, max(1, len(modality_dims)), n_items)[kept_items]
    modalities = {
        name: _noisy_view(rng, item_factors[kept_items], dim, item_group, index)
        for index, (name, dim) in enumerate(modality_dims.items())
    }
    dataset = Dataset.from_labels(f"generated-{seed}", users, items, labels, int(users.max()) + 1, len(kept_items),
                                  modalities)
    return GeneratedData(dataset=dataset, item_group=item_group, item_cluster=item_cluster[kept_items])


def _check_sizes(n_users: int, n_items: int, n_interactions: int) -> None:
    if n_users < 2 or n_items < 10:
        raise GatedRecError("generated data needs at least 2 users and 10 items")
    if n_interactions < MIN_PER_USER * n_users:
        raise GatedRecError(
            f"--interactions {n_interactions} is too few for {n_users} users: each user gets at least "
            f"{MIN_PER_USER}, so ask for at least {MIN_PER_USER * n_users}"
        )
    if n_interactions > 0.5 * n_users * n_items:
        raise GatedRecError(f"--interactions {n_interactions} exceeds half of users x items; ask for fewer")


def _user_activity(rng: np.random.Generator, n_users: int, n_items: int, n_interactions: int) -> np.ndarray:
    activity = rng.lognormal(0.0, 0.8, n_users)
    extra = n_interactions - MIN_PER_USER * n_users
    share = activity / activity.sum() * extra
    counts = MIN_PER_USER + np.floor(share).astype(np.int64) + (rng.random(n_users) < share % 1)
    return np.minimum(counts, n_items // 2)


def _sample_interactions(rng, n_users, n_items, n_interactions, centres, item_cluster):
    counts = _user_activity(rng, n_users, n_items, n_interactions)
    popularity = rng.lognormal(0.0, 1.0, n_items)
    items_by_cluster = np.argsort(item_cluster, kind="stable")
    cluster_cdf = _flat_cdf(popularity[items_by_cluster], item_cluster[items_by_cluster], len(centres))
    user_parts, item_parts = [], []
    for start in range(0, n_users, USER_CHUNK):
        stop = min(start + USER_CHUNK, n_users)
        taste = rng.standard_normal((stop - start, centres.shape[1])).astype(np.float32)
        logits = 2.0 * taste @ centres.T / np.sqrt(centres.shape[1])
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        draws = np.ceil(counts[start:stop] * OVERSAMPLE).astype(np.int64)
        draw_users = np.repeat(np.arange(stop - start), draws)
        user_cdf = _flat_cdf(weights.ravel(), np.repeat(np.arange(stop - start), len(centres)), stop - start)
        clusters = np.searchsorted(user_cdf, draw_users + rng.random(len(draw_users)), side="right")
        clusters -= draw_users * len(centres)
        clusters = np.clip(clusters, 0, len(centres) - 1)
        picks = np.searchsorted(cluster_cdf, clusters + rng.random(len(clusters)), side="right")
        user_parts.append(draw_users + start)
        item_parts.append(items_by_cluster[np.clip(picks, 0, n_items - 1)])
    return _unique_up_to_count(np.concatenate(user_parts), np.concatenate(item_parts), counts, n_items, rng)


def _flat_cdf(weights: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Concatenated per-group CDFs shifted by the group index, so that one searchsorted samples every group."""
    totals = np.bincount(groups, weights=weights, minlength=n_groups)
    cumulative = np.cumsum(weights) - np.repeat(np.cumsum(totals) - totals, np.bincount(groups, minlength=n_groups))
    return groups + cumulative / np.maximum(totals[groups], 1e-30)


def _unique_up_to_count(users, items, counts, n_items, rng):
    keys = np.unique(users * n_items + items)
    users, items = keys // n_items, keys % n_items
    ranks, _ = rank_within_user(users, rng)
    keep = ranks < counts[users]
    return users[keep], items[keep]


def _compact_ids(users: np.ndarray, items: np.ndarray):
    _, users = np.unique(users, return_inverse=True)
    kept_items, items = np.unique(items, return_inverse=True)
    return users, items, kept_items


def _noisy_view(rng, item_factors, dim: int, item_group: np.ndarray, clean_group: int) -> Modality:
    projection = rng.standard_normal((item_factors.shape[1], dim)).astype(np.float32) / np.sqrt(item_factors.shape[1])
    group_offsets = rng.standard_normal((item_group.max() + 1, dim)).astype(np.float32)
    noise_scale = np.where(item_group == clean_group, CLEAN_NOISE, NOISY_NOISE).astype(np.float32)[:, None]
    noise = noise_scale * rng.standard_normal((len(item_factors), dim)).astype(np.float32)
    features = item_factors @ projection + group_offsets[item_group] + noise
    return Modality(features=features.astype(np.float32), present=np.ones(len(item_factors), dtype=bool))


def save_mmrec(generated: GeneratedData, folder: str | Path) -> Path:
    """Write the MMRec layout plus dataset.yaml and item_groups.tsv (the planted truth: each item's informative
    modality and latent cluster)."""
    folder = Path(folder)
    dataset = generated.dataset
    inter_name = write_interactions(folder, folder.name, *dataset.labelled_interactions())
    modalities = {
        name: write_modality(folder, name, modality.features, np.arange(dataset.n_items), dataset.n_items)
        for name, modality in dataset.modalities.items()
    }
    if dataset.modalities:
        informative = np.array(generated.group_names)[generated.item_group]
        groups = pd.DataFrame({"itemID": np.arange(dataset.n_items), "informative": informative,
                               "cluster": generated.item_cluster})
        write_atomic(folder / "item_groups.tsv", lambda tmp: groups.to_csv(tmp, sep="\t", index=False))
    write_description(folder, inter_name, modalities, generated=True)
    return folder
