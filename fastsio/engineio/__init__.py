"""Engine.IO v4 (and v3) server: the transport layer under Socket.IO."""
from .server import ERROR_MESSAGES, Engine
from .socket import EngineSocket
from .transport import PreparedMessage, Transport

__all__ = ["Engine", "EngineSocket", "PreparedMessage", "Transport", "ERROR_MESSAGES"]
