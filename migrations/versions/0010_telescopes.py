"""telescopes are data: the telescope table, each order's telescope and price multiplier

Creates ``telescope`` (site, optics, filters with Voyager indexes, profile, price multiplier, host,
status, last seen), seeds it with one telescope built from the settings of the database's install
(``STELLAR_SITE__*``, ``STELLAR_OPTICS__*``, ``STELLAR_API__FILTERS``, ``STELLAR_VOYAGER__PROFILE_NAME``,
slug ``STELLAR_ORDERS__TELESCOPE``), and points every existing order at it with multiplier 1, so a
single-telescope install keeps running and pricing exactly as before. See docs/telescopes.md.

Revision ID: 0010_telescopes
Revises: 0009_mail
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010_telescopes"
down_revision = "0009_mail"
branch_labels = None
depends_on = None


def _seed_row() -> dict:
    """The first telescope, from today's settings (read when the migration runs)."""
    from core.settings import get_settings

    s = get_settings()
    optics = s.optics
    return {
        "slug": s.orders.telescope, "name": s.orders.telescope, "site_name": s.site.name,
        "latitude": s.site.latitude, "longitude": s.site.longitude, "elevation": s.site.elevation,
        "time_zone": s.site.time_zone, "horizon_alt": s.site.horizon_alt,
        "aperture_mm": getattr(optics, "aperture_mm", 106.0), "focal_length_mm": optics.focal_length_mm,
        "sensor_width_px": optics.sensor_width_px, "sensor_height_px": optics.sensor_height_px,
        "pixel_size_um": optics.pixel_size_um,
        "filters": [{"name": f, "index": i} for i, f in enumerate(s.api.filter_list())],
        "voyager_profile": s.voyager.profile_name,
    }


def upgrade() -> None:
    telescope = op.create_table(
        "telescope",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("site_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("elevation", sa.Float(), nullable=False),
        sa.Column("time_zone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("horizon_alt", sa.Float(), nullable=False),
        sa.Column("aperture_mm", sa.Float(), nullable=False),
        sa.Column("focal_length_mm", sa.Float(), nullable=False),
        sa.Column("sensor_width_px", sa.Integer(), nullable=False),
        sa.Column("sensor_height_px", sa.Integer(), nullable=False),
        sa.Column("pixel_size_um", sa.Float(), nullable=False),
        sa.Column("filters", JSONB(), nullable=False),
        sa.Column("voyager_profile", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("price_multiplier", sa.Numeric(8, 4), nullable=False),
        sa.Column("host_customer_id", sa.Integer(), nullable=True),
        sa.Column("host_share_percent", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["host_customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
        sa.CheckConstraint("host_share_percent BETWEEN 0 AND 100", name="ck_telescope_host_share"),
        sa.CheckConstraint("price_multiplier > 0", name="ck_telescope_multiplier_positive"),
    )
    op.add_column("order", sa.Column("telescope_id", sa.Integer(), nullable=True))
    op.add_column("order", sa.Column("price_multiplier", sa.Numeric(8, 4), server_default="1", nullable=False))
    op.add_column("order", sa.Column("assignment_reason", sqlmodel.sql.sqltypes.AutoString(length=2000),
                                     server_default="", nullable=False))
    op.create_foreign_key("fk_order_telescope", "order", "telescope", ["telescope_id"], ["id"])
    op.create_index(op.f("ix_order_telescope_id"), "order", ["telescope_id"], unique=False)

    seed = _seed_row()
    now = sa.func.now()
    bind = op.get_bind()
    seed_id = bind.execute(telescope.insert().values(
        **seed, price_multiplier=1, host_share_percent=0, status="online", created_at=now, updated_at=now,
    ).returning(telescope.c.id)).scalar_one()
    bind.execute(sa.text('UPDATE "order" SET telescope_id = :t WHERE telescope_id IS NULL'), {"t": seed_id})


def downgrade() -> None:
    op.drop_index(op.f("ix_order_telescope_id"), table_name="order")
    op.drop_constraint("fk_order_telescope", "order", type_="foreignkey")
    op.drop_column("order", "assignment_reason")
    op.drop_column("order", "price_multiplier")
    op.drop_column("order", "telescope_id")
    op.drop_table("telescope")
