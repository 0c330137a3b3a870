"use client";

import { useMutation, useQueryClient, type QueryKey } from "@tanstack/react-query";

import { dataOf, useApi } from "@/lib/api/client";

import { updateImageIn } from "./pages";

/**
 * Favourite an image, optimistically: every cached view of it (gallery pages, the dashboard's
 * recent images, a single image) flips at once and flips back if the gateway says no.
 */
export function useFavourite() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, favourite }: { id: string; favourite: boolean }) =>
      dataOf(await api.PATCH("/v1/images/{image_id}", { params: { path: { image_id: id } }, body: { favourite } })),
    onMutate: async ({ id, favourite }) => {
      await queryClient.cancelQueries({ queryKey: ["images"] });
      const snapshot: [QueryKey, unknown][] = queryClient.getQueriesData({ queryKey: ["images"] });
      queryClient.setQueriesData({ queryKey: ["images"] }, (data: unknown) => updateImageIn(data, id, (image) => ({ ...image, favourite })));
      return { snapshot };
    },
    onError: (_error, _variables, context) => {
      for (const [key, data] of context?.snapshot ?? []) queryClient.setQueryData(key, data);
    },
    onSuccess: (image) => {
      queryClient.setQueriesData({ queryKey: ["images"] }, (data: unknown) => updateImageIn(data, image.id, (old) => ({ ...old, favourite: image.favourite })));
    },
    onSettled: () => {
      // A favourites-only view drops what is no longer a favourite (and gains what now is).
      void queryClient.invalidateQueries({ queryKey: ["images"] });
    },
  });
}

/**
 * Delete an image for good; it leaves every cached view at once. `onRemoving` runs first, so
 * a view showing the image can move away before it disappears from the caches.
 */
export function useDeleteImage(onRemoving?: (id: string) => void) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) => {
      await api.DELETE("/v1/images/{image_id}", { params: { path: { image_id: id } } });
      return id;
    },
    onSuccess: (id) => {
      onRemoving?.(id);
      queryClient.removeQueries({ queryKey: ["images", "one", id] });
      queryClient.setQueriesData({ queryKey: ["images"] }, (data: unknown) => updateImageIn(data, id, () => null));
      void queryClient.invalidateQueries({ queryKey: ["images"] });
      void queryClient.invalidateQueries({ queryKey: ["generations"] });
    },
  });
}
