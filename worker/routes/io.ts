// Sync IO routes (PROTOCOL.md section 2-3). PLACEHOLDER: the core data plane issue implements these.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const health: Handler = notYet;
export const getFile: Handler = notYet;
export const putFile: Handler = notYet;
export const deleteFile: Handler = notYet;
export const metadata: Handler = notYet;
export const listFiles: Handler = notYet;
export const listFolders: Handler = notYet;
export const ensureFolder: Handler = notYet;
