"""The deadline sweep as library steps; the Prefect flows in ``flows/`` only call these.

Three rooms, one per step:

1. ``duban.sweep.decisions``: load open tasks and milestones, apply the rules, and write each
   decision to the ledger (``notifications``) under its unique key, before anything is sent
   (``duban.sweep.ledger``: the SQL per dialect).  ``preview``: the same without writing.
2. ``duban.sweep.digests``: gather each recipient's pending items into one digest (the outbox), in
   the same transaction that marks the items as queued.
3. ``duban.sweep.delivery``: claim pending digests (a lease protects against two senders), send
   them through a channel (``notifications.channel.Channel``), mark them sent; failures are kept
   with their reason and retried with backoff.

The package re-exports nothing (a re-export would make every room import its own package back):
import each step from its room.
"""
