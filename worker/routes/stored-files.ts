// Durable stored files (PROTOCOL.md section 4). PLACEHOLDER: core data plane issue.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const getStoredFile: Handler = notYet;
export const putStoredFile: Handler = notYet;
export const deleteStoredFile: Handler = notYet;
export const storedFileMetadata: Handler = notYet;
