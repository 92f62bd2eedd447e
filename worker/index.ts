// The default meshbox app (`npm run dev`, the repository's own tenants): the library with no
// options, so vars and secrets configure everything. An app of your own does the same with
// options and routes of its own (README "Use as a library", examples/own-worker).
import type { Env } from "./env";
import { createMeshbox } from "./meshbox";

const meshbox = createMeshbox();

export const MeshHub = meshbox.MeshHub;

export default {
  fetch: meshbox.fetch,
  scheduled: meshbox.scheduled,
} satisfies ExportedHandler<Env>;
