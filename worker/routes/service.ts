// Service liveness: no auth, no storage.
import { json } from "itty-router";
import type { Handler } from "../request-context";

export const health: Handler = () => json({ ok: true, service: "meshbox" });
