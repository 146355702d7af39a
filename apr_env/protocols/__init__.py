"""Communication protocols, registered by name: `get_protocol("apr")`, `get_protocol("serial")`, ...

Each protocol is one small class in its own file (see `base.Protocol`). Importing this
package registers the built-in ones.
"""

from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import (
    PROTOCOLS,
    ChildSpec,
    Delivery,
    Protocol,
    SpawnRequest,
    get_protocol,
    register,
)
from apr_env.protocols.broadcast import BroadcastProtocol
from apr_env.protocols.first_k import FirstKProtocol
from apr_env.protocols.fork_full_context import ForkFullContextProtocol
from apr_env.protocols.messaging import MessagingProtocol
from apr_env.protocols.self_consistency import SelfConsistencyProtocol
from apr_env.protocols.serial import SerialProtocol
from apr_env.protocols.subscriptions import SubscriptionsProtocol

__all__ = [
    "PROTOCOLS",
    "AprProtocol",
    "BroadcastProtocol",
    "ChildSpec",
    "Delivery",
    "FirstKProtocol",
    "ForkFullContextProtocol",
    "MessagingProtocol",
    "Protocol",
    "SelfConsistencyProtocol",
    "SerialProtocol",
    "SpawnRequest",
    "SubscriptionsProtocol",
    "get_protocol",
    "register",
]
