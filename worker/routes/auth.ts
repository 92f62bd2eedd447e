// Session routes. PLACEHOLDER: auth issue.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const createSession: Handler = notYet;
export const deleteSession: Handler = notYet;
