"""media owners; group summaries sanitised

Uploads get the group that uploaded them (``media_file.local_actor_id``).
Uploads made before this have no recorded uploader: each one that an event
already uses as its flyer is given to that event's group (the first, if
several used it); the others stay unowned, and the first group that uses one
claims it (node/groups/operations.py, ``usable_media``). Group summaries
stored before the sanitising rule pass the same nh3 allowlist now.

Revision ID: 0004_content_ownership
Revises: 0003_states
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0004_content_ownership"
down_revision = "0003_states"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media_file") as batch:
        batch.add_column(sa.Column("local_actor_id", sa.Integer(), nullable=True))
        batch.create_index("ix_media_file_local_actor_id", ["local_actor_id"])
        batch.create_foreign_key("fk_media_file_local_actor", "local_actor",
                                 ["local_actor_id"], ["id"])
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT o.local_actor_id, e.flyer FROM event e JOIN local_object o "
        "ON o.id = e.object_id WHERE e.flyer IS NOT NULL ORDER BY e.id")).all()
    owners: dict[str, int] = {}
    for actor_id, flyer in rows:
        data = json.loads(flyer) if isinstance(flyer, str) else flyer
        path = (data or {}).get("path", "")
        if isinstance(path, str) and path.startswith("uploads/"):
            owners.setdefault(path[len("uploads/"):], actor_id)
    for name, actor_id in owners.items():
        bind.execute(sa.text("UPDATE media_file SET local_actor_id = :a "
                             "WHERE name = :n AND local_actor_id IS NULL"),
                     {"a": actor_id, "n": name})
    from node.core.text import user_html

    for actor_id, summaries in bind.execute(sa.text(
            "SELECT id, summaries FROM local_actor")).all():
        data = json.loads(summaries) if isinstance(summaries, str) else summaries
        if not data:
            continue
        clean = {lang: user_html(text) for lang, text in data.items()}
        if clean != data:
            bind.execute(sa.text("UPDATE local_actor SET summaries = :s WHERE id = :i")
                         .bindparams(sa.bindparam("s", type_=sa.JSON())),
                         {"s": clean, "i": actor_id})


def downgrade() -> None:
    with op.batch_alter_table("media_file") as batch:
        batch.drop_constraint("fk_media_file_local_actor", type_="foreignkey")
        batch.drop_index("ix_media_file_local_actor_id")
        batch.drop_column("local_actor_id")
