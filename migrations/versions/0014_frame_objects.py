"""frames in the image store: each frame row records its FITS and JPG object keys and SHA-256

Adds ``shot_done.fits_key``, ``fits_sha256``, ``jpg_key`` and ``jpg_sha256`` (nullable): the ingest
uploads a frame's files to the image store (``frames/<order_id>/<guid>.fits|.jpg``, docs/frames.md)
before it inserts the row. Frames ingested before keep their ``fits_path``/``jpg_path`` and empty
keys; nothing is moved.

Revision ID: 0014_frame_objects
Revises: 0013_host_earnings
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0014_frame_objects"
down_revision = "0013_host_earnings"
branch_labels = None
depends_on = None

_COLUMNS = (("fits_key", 300), ("fits_sha256", 64), ("jpg_key", 300), ("jpg_sha256", 64))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("shot_done", sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True))


def downgrade() -> None:
    for name, _ in reversed(_COLUMNS):
        op.drop_column("shot_done", name)
