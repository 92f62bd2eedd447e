// Admin API. PLACEHOLDER: operations issue.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const listKeys: Handler = notYet;
export const createKey: Handler = notYet;
export const revokeKey: Handler = notYet;
export const listSessions: Handler = notYet;
export const revokeSession: Handler = notYet;
export const meshStats: Handler = notYet;
export const wipeMesh: Handler = notYet;
export const reconcileMesh: Handler = notYet;
export const runMaintenanceNow: Handler = notYet;
export const issueMeshId: Handler = notYet;
