"""The local outbox channel: each digest becomes a readable text file.

On the embedded setup this is the default channel, so a newcomer can see exactly what duban
would send (``duban outbox`` lists the same from the store).  Writing the same digest again
overwrites its file: a retry after a crash never leaves two copies.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from duban.files import private_dir, write_private_bytes
from notifications.addresses import header_text
from notifications.channel import DeliveryReport, Outgoing

UNSAFE = re.compile(r"[\\/:*?\"<>|\s]+")


class OutboxChannel:
    """The :class:`~notifications.channel.Channel` that writes each message to a text file."""

    name = "outbox"
    idempotent = True  # sending a digest again rewrites the same file: never a second copy

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._made: set[str] = set()  # the day folders this channel made or found (one check each)

    def path_for(self, out: Outgoing) -> Path:
        return self.folder / out.run_on.isoformat() / f"{out.id:06d}-{UNSAFE.sub('_', out.recipient)}.txt"

    def send(self, out: Outgoing) -> DeliveryReport | None:
        """Write the message's file; nothing to report (``deliver`` records the attempt).

        Written whole to a temporary file that then takes the final name: a reader never sees half
        a message, and a rewrite replaces the file at once."""
        who = header_text(out.recipient) + (f" <{header_text(out.email)}>" if out.email else "")
        header = f"收件人：{who}\n主题：{header_text(out.subject)}\n\n"  # one line each, whatever a name holds
        data = (header + out.body).encode("utf-8")
        path = str(self.path_for(out))
        tmp = path[: -len(".txt")] + ".tmp"
        folder = os.path.dirname(path)
        if folder not in self._made:
            private_dir(folder)  # live links inside: readable by duban's user only
            self._made.add(folder)
        try:
            write_private_bytes(tmp, data)
        except FileNotFoundError:  # the folder was removed while the channel was open
            private_dir(folder)
            write_private_bytes(tmp, data)
        os.replace(tmp, path)
        return None

    def close(self) -> None:
        pass
