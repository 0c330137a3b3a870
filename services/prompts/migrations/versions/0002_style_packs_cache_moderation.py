"""Style packs (seeded), the prompt cache and moderation decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The catalogue is data of this migration, not imported from the application: a migration must
replay the same way forever. A later migration re-curates by updating these rows.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from visiona.kit.migrations import enable_user_rls

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "prompts"

# (id, name, description, negative cues, templates); "{subject}" is where the trigger word
# and the user's prompt go.
PACKS: list[tuple[str, str, str, list[str], list[str]]] = [
    (
        "headshot",
        "Headshot",
        "Clean professional headshots for profiles and CVs: sharp, flattering, studio-lit.",
        ["harsh shadows", "busy background", "distorted features", "heavy retouching"],
        [
            "professional corporate headshot of {subject}, neutral grey backdrop, soft "
            "three-point studio lighting, 85mm lens, sharp focus on the eyes",
            "LinkedIn profile photo of {subject}, smart business attire, blurred modern office "
            "background, natural window light, shallow depth of field",
            "studio portrait of {subject}, head and shoulders, clean white background, "
            "softbox key light, confident relaxed expression, high detail",
            "outdoor business headshot of {subject}, golden-hour backlight, creamy bokeh, "
            "approachable smile, 105mm lens",
        ],
    ),
    (
        "editorial",
        "Editorial",
        "Magazine-style fashion and feature photography with bold styling and composition.",
        ["amateur snapshot", "flat lighting", "cluttered frame"],
        [
            "high-fashion editorial photograph of {subject}, Vogue magazine style, dramatic "
            "studio lighting, bold styling, medium format camera",
            "magazine cover shoot of {subject}, strong graphic composition, saturated colour "
            "backdrop, crisp beauty lighting",
            "street-style editorial of {subject} in a city at dusk, designer outfit, motion in "
            "the background, 35mm lens, film grain",
            "black and white editorial portrait of {subject}, high contrast, sculpted light, "
            "fine art fashion photography",
        ],
    ),
    (
        "fantasy",
        "Fantasy",
        "Epic fantasy scenes: armour, magic, otherworldly landscapes, painterly light.",
        ["modern objects", "low detail", "gore"],
        [
            "epic fantasy portrait of {subject} as an elven ranger, ornate leather armour, "
            "misty ancient forest, volumetric god rays, highly detailed",
            "{subject} as a sorcerer casting glowing arcane magic, flowing robes, ruined "
            "castle at twilight, cinematic fantasy art",
            "{subject} as a knight in engraved silver armour, standing on a cliff above a "
            "dragon-filled sky, dramatic clouds, matte painting style",
            "ethereal fantasy portrait of {subject} wearing a crown of flowers, enchanted "
            "glowing lake, soft magical light, dreamlike atmosphere",
        ],
    ),
    (
        "cinematic",
        "Cinematic",
        "Film stills: anamorphic framing, moody colour grading, story in a single frame.",
        ["flat lighting", "snapshot look", "oversaturated colours"],
        [
            "cinematic film still of {subject}, anamorphic lens, teal and orange colour "
            "grading, shallow depth of field, 35mm film grain",
            "{subject} in a neon-lit rainy street at night, cinematic wide shot, reflections "
            "on wet asphalt, moody atmosphere, shot on ARRI Alexa",
            "dramatic close-up of {subject}, film noir lighting through venetian blinds, "
            "high contrast, 1940s cinema",
            "{subject} walking through a desert at golden hour, epic widescreen composition, "
            "lens flare, blockbuster movie still",
        ],
    ),
    (
        "casual",
        "Casual",
        "Natural everyday photos, as if a friend took them: candid, warm, unposed.",
        ["studio lighting", "heavy makeup", "stiff pose"],
        [
            "candid photo of {subject} laughing at a sunny café terrace, natural light, "
            "shot on iPhone, relaxed and authentic",
            "{subject} on a weekend hike, casual outdoor clothes, mountain view, bright "
            "daylight, snapshot style",
            "{subject} at home on a cosy sofa with a cup of coffee, warm window light, "
            "lifestyle photography",
            "{subject} walking in a park in autumn, golden leaves, candid street photography, "
            "50mm lens",
        ],
    ),
    (
        "vintage",
        "Vintage film",
        "Analogue looks from past decades: film stocks, period styling, soft faded colour.",
        ["digital sharpness", "modern gadgets", "HDR look"],
        [
            "1970s film photograph of {subject}, Kodachrome colours, soft grain, period "
            "clothing, warm faded tones",
            "1950s Hollywood glamour portrait of {subject}, black and white, soft focus, "
            "classic studio lighting",
            "Polaroid snapshot of {subject} at a summer party, 1980s style, flash photography, "
            "slight colour shift",
        ],
    ),
]


def upgrade() -> None:
    packs = op.create_table(
        "style_packs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("negative_cues", ARRAY(sa.Text), nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    templates = op.create_table(
        "style_templates",
        sa.Column(
            "pack_id",
            sa.Text,
            sa.ForeignKey(f"{SCHEMA}.style_packs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("template", sa.Text, nullable=False),
        sa.CheckConstraint("strpos(template, '{subject}') > 0", name="template_has_subject"),
        schema=SCHEMA,
    )
    op.bulk_insert(
        packs,
        [
            {"id": pid, "position": i, "name": name, "description": desc, "negative_cues": neg}
            for i, (pid, name, desc, neg, _) in enumerate(PACKS)
        ],
    )
    op.bulk_insert(
        templates,
        [
            {"pack_id": pid, "position": j, "template": template}
            for pid, _, _, _, pack_templates in PACKS
            for j, template in enumerate(pack_templates)
        ],
    )

    # The cache of PreparePrompt answers. Per user (RLS), see repository.PromptCacheRepository.
    op.create_table(
        "prompt_cache",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("answer", JSONB, nullable=False),
        sa.Column("enhancement_id", UUID(as_uuid=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("prompt_cache_expires", "prompt_cache", ["expires_at"], schema=SCHEMA)
    enable_user_rls(SCHEMA, "prompt_cache")
    # The sweeper deletes expired entries of every user, as the system principal; it can
    # neither read nor touch a live entry.
    op.execute(
        f"""
        CREATE POLICY system_sweep ON "{SCHEMA}".prompt_cache FOR DELETE
            USING (current_setting('app.principal', true) = 'system' AND expires_at <= now());
        CREATE POLICY system_sweep_read ON "{SCHEMA}".prompt_cache FOR SELECT
            USING (current_setting('app.principal', true) = 'system' AND expires_at <= now());
        """
    )

    op.create_table(
        "moderation_decisions",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("style_pack", sa.Text),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("provider", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("from_cache", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("source IN ('rules', 'llm', 'provider')", name="source_known"),
        schema=SCHEMA,
    )
    op.create_index(
        "moderation_decisions_user_created",
        "moderation_decisions",
        ["user_id", "created_at"],
        schema=SCHEMA,
    )
    enable_user_rls(SCHEMA, "moderation_decisions")


def downgrade() -> None:
    op.drop_table("moderation_decisions", schema=SCHEMA)
    op.drop_table("prompt_cache", schema=SCHEMA)
    op.drop_table("style_templates", schema=SCHEMA)
    op.drop_table("style_packs", schema=SCHEMA)
