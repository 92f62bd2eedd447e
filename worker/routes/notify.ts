// Push WebSocket routes (PROTOCOL.md section 6). PLACEHOLDER: hub issue.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const upgrade: Handler = notYet;
export const health: Handler = notYet;
