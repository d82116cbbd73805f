"""gatedrec: multimodal top-K recommendation around RLMultimodalRec, with baselines and an honest protocol."""

__version__ = "0.1.0"
