"""Local model runtime: the ChatModel protocol, the llama.cpp adapter, a fake, a registry."""

from models.base import ChatMessage, ChatModel, GenerationParams, ModelInfo

__all__ = ["ChatMessage", "ChatModel", "GenerationParams", "ModelInfo"]
