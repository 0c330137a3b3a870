/**
 * The training presets. The API names them (CreateModelRequest.preset: fast | balanced | quality)
 * but does not describe them: steps come from the training service (visiona.training.domain
 * PRESETS), times are rough estimates from the trainer's pace on the provider (about 20-30
 * minutes per 1000 steps). Every preset costs the same: `prices.training` of GET /v1/billing/plans.
 */

export type PresetId = "fast" | "balanced" | "quality";

export type PresetInfo = { id: PresetId; label: string; steps: number; time: string; text: string };

export const PRESETS: readonly PresetInfo[] = [
  { id: "fast", label: "Fast", steps: 500, time: "about 10–15 min", text: "Fewer steps: a good first try." },
  { id: "balanced", label: "Balanced", steps: 1000, time: "about 20–30 min", text: "The usual choice: likeness and flexibility." },
  { id: "quality", label: "Quality", steps: 2000, time: "about 40–60 min", text: "Twice the steps and a larger LoRA: the closest likeness." },
];

export const DEFAULT_PRESET: PresetId = "balanced";

export function presetInfo(id: string): PresetInfo | undefined {
  return PRESETS.find((preset) => preset.id === id);
}
