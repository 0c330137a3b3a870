import type { Schemas } from "@/lib/api/client";

/** A validated photo as the gateway returns it (one sharp face, 900 px square), with `fields` over it. */
export function photoWith(fields: Pick<Schemas["Photo"], "id" | "status"> & Partial<Schemas["Photo"]>): Schemas["Photo"] {
  return {
    reasons: [],
    content_type: "image/jpeg",
    width: 900,
    height: 900,
    faces: 1,
    blur_score: 120,
    require_one_face: true,
    created_at: "2026-12-07T04:30:00Z",
    validated_at: "2026-12-07T04:30:02Z",
    preview_url: null,
    ...fields,
  };
}
