"""gatedrec: multimodal top-K recommendation around RLMultimodalRec, with baselines and an honest protocol."""

__version__ = "0.1.0"

_SERVING_NAMES = ("Recommender", "NewItem", "Explanation")


def __getattr__(name: str):
    """``from gatedrec import Recommender`` without importing PyTorch at ``import gatedrec``."""
    if name in _SERVING_NAMES:
        from gatedrec import serving

        return getattr(serving, name)
    raise AttributeError(f"module 'gatedrec' has no attribute '{name}'")


__all__ = ["__version__", *_SERVING_NAMES]
