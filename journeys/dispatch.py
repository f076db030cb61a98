"""Where accepted events go once they are stored: the seam lives in `contacts.outbox`.

Re-exported here because journey code (the virtual-time harness, tests) installs its own
dispatcher to play the engine's part in-process.
"""

from __future__ import annotations

from contacts.outbox import Dispatcher, dispatcher, install_dispatcher

__all__ = ["Dispatcher", "dispatcher", "install_dispatcher"]
