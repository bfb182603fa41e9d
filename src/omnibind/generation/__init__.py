"""Text generation: a Gemma-style prefix-LM decoder reading media tokens and a prompt (PaliGemma-compatible)."""

from omnibind.generation.config import DecoderConfig, GeneratorConfig
from omnibind.generation.decoding import Decoding
from omnibind.generation.model import Generator
from omnibind.generation.tokenizer import PromptTokenizer

__all__ = ["DecoderConfig", "Decoding", "Generator", "GeneratorConfig", "PromptTokenizer"]
