"""Item features from raw content: text and image encoders, run once per input and cached."""

from gatedrec.features.encoders import ImageEncoder, TextEncoder, encode_cached, image_encoder, text_encoder

__all__ = ["ImageEncoder", "TextEncoder", "encode_cached", "image_encoder", "text_encoder"]
