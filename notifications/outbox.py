"""The local outbox channel: each digest becomes a readable text file.

On the embedded setup this is the default channel, so a newcomer can see exactly what duban
would send (``duban outbox`` lists the same from the store).  Writing the same digest again
overwrites its file: a retry after a crash never leaves two copies.
"""

from __future__ import annotations

import re
from pathlib import Path

from duban.files import open_private, private_dir
from notifications.addresses import header_text
from notifications.channel import DeliveryReport, Outgoing

UNSAFE = re.compile(r"[\\/:*?\"<>|\s]+")


class OutboxChannel:
    """The :class:`~notifications.channel.Channel` that writes each message to a text file."""

    name = "outbox"
    idempotent = True  # sending a digest again rewrites the same file: never a second copy

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path_for(self, out: Outgoing) -> Path:
        return self.folder / out.run_on.isoformat() / f"{out.id:06d}-{UNSAFE.sub('_', out.recipient)}.txt"

    def send(self, out: Outgoing) -> DeliveryReport | None:
        """Write the message's file; nothing to report (``deliver`` records the attempt)."""
        path = self.path_for(out)
        private_dir(path.parent)  # live links inside: readable by duban's user only
        who = header_text(out.recipient) + (f" <{header_text(out.email)}>" if out.email else "")
        header = f"收件人：{who}\n主题：{header_text(out.subject)}\n\n"  # one line each, whatever a name holds
        tmp = path.with_suffix(".tmp")
        with open_private(tmp, "w", encoding="utf-8") as f:
            f.write(header + out.body)
        tmp.replace(path)
        return None

    def close(self) -> None:
        pass
