"""Merging one contact into another, in SQL both stores run: what belongs to the
person moves to the contact that stays.

Written once with ``{kept}``, ``{merged}`` and ``{now}`` for the parameters; each store
turns them into its own markers with :func:`statements`. The merged contact's row
itself (its ledger stays with it, the ledger only grows) and the kept contact's
identifiers and opt-in are the stores' own work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

_MOVE = "UPDATE {table} SET contact_id = {kept} WHERE contact_id = {merged}"
"""Rows of which a contact may have any number."""

_MOVE_UNLESS_KEPT_HAS = (
    "UPDATE {table} SET contact_id = {kept} WHERE contact_id = {merged}"
    " AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.contact_id = {kept}{same})"
)
"""Rows of which a contact has one (per ``same``): the kept contact's wins."""

_LEFT_OVER = "DELETE FROM {table} WHERE contact_id = {merged}"

_LATER = (
    "CASE WHEN o.{column} IS NOT NULL AND (conversations.{column} IS NULL"
    " OR o.{column} > conversations.{column}) THEN o.{column} ELSE conversations.{column} END"
)

_TEMPLATE: tuple[str, ...] = (
    *(
        _MOVE.format(table=table, kept="{kept}", merged="{merged}")
        for table in ("messages", "inbound_handoffs", "flow_handoffs", "conversation_events")
    ),
    # The agents' notes and assignments follow the person.
    _MOVE.format(table="desk_entries", kept="{kept}", merged="{merged}"),
    "INSERT INTO contact_tags (contact_id, tag) SELECT {kept}, tag FROM contact_tags"
    " WHERE contact_id = {merged} ON CONFLICT DO NOTHING",
    _LEFT_OVER.format(table="contact_tags", merged="{merged}"),
    # One conversation: the later window, and an agent's hold on either.
    "UPDATE conversations SET"
    " last_inbound_at = (SELECT "
    + _LATER.format(column="last_inbound_at")
    + " FROM conversations o"
    " WHERE o.contact_id = {merged}),"
    " agent = (SELECT CASE WHEN conversations.owner = 'bot' THEN o.agent"
    " ELSE conversations.agent END FROM conversations o WHERE o.contact_id = {merged}),"
    " owner = (SELECT CASE WHEN conversations.owner = 'bot' THEN o.owner"
    " ELSE conversations.owner END FROM conversations o WHERE o.contact_id = {merged}),"
    " updated_at = {now}"
    " WHERE contact_id = {kept}"
    " AND EXISTS (SELECT 1 FROM conversations o WHERE o.contact_id = {merged})",
    *(
        statement.format(table=table, kept="{kept}", merged="{merged}", same="")
        for table in ("conversations", "conversation_reads")
        for statement in (_MOVE_UNLESS_KEPT_HAS, _LEFT_OVER)
    ),
    # A flow session: the kept contact's, else the merged one's with its wakeups.
    "DELETE FROM flow_wakeups WHERE contact_id = {merged}"
    " AND EXISTS (SELECT 1 FROM flow_sessions o WHERE o.contact_id = {kept})",
    "DELETE FROM flow_sessions WHERE contact_id = {merged}"
    " AND EXISTS (SELECT 1 FROM flow_sessions o WHERE o.contact_id = {kept})",
    *(
        _MOVE.format(table=table, kept="{kept}", merged="{merged}")
        for table in ("flow_sessions", "flow_wakeups")
    ),
    # Campaigns: one place per broadcast; one active enrolment per sequence.
    *(
        statement.format(
            table=table,
            kept="{kept}",
            merged="{merged}",
            same=f" AND o.broadcast_id = {table}.broadcast_id",
        )
        for table in ("broadcast_contacts", "broadcast_recipients")
        for statement in (_MOVE_UNLESS_KEPT_HAS, _LEFT_OVER)
    ),
    "UPDATE sequence_enrolments SET state = 'unenrolled', finished_at = {now}, updated_at = {now}"
    " WHERE contact_id = {merged} AND state = 'active' AND EXISTS (SELECT 1 FROM"
    " sequence_enrolments o WHERE o.contact_id = {kept} AND o.state = 'active'"
    " AND o.sequence_id = sequence_enrolments.sequence_id)",
    _MOVE.format(table="sequence_enrolments", kept="{kept}", merged="{merged}"),
    # Contacts merged into the merged one before now belong to the kept one.
    "UPDATE contacts SET merged_into = {kept} WHERE merged_into = {merged}",
    # The merged contact gives up its phone number and user id, keeping its ledger.
    "UPDATE contacts SET wa_id = NULL, user_id = 'merged.' || id, merged_into = {kept},"
    " updated_at = {now} WHERE id = {merged}",
)

_TOKEN = re.compile(r"\{(kept|merged|now)\}")


def statements(
    marker: Callable[[int], str], *, kept: object, merged: object, now: object
) -> Iterator[tuple[str, tuple[object, ...]]]:
    """Each statement with ``marker(n)`` for its n-th parameter (from 1) and the
    parameters it uses, in that order."""
    values = {"kept": kept, "merged": merged, "now": now}
    for template in _TEMPLATE:
        used: list[str] = []
        for name in _TOKEN.findall(template):
            if name not in used:
                used.append(name)
        numbers = {name: marker(number) for number, name in enumerate(used, start=1)}
        sql = template.format(**{name: numbers.get(name, "") for name in values})
        yield sql, tuple(values[name] for name in used)
