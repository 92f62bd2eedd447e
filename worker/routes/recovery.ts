// Recovery wrappers (PROTOCOL.md section 5). PLACEHOLDER: core data plane issue.
import type { Handler } from "../request-context";
import { HttpError } from "../lib/errors";

const notYet: Handler = () => { throw new HttpError("unavailable", "Not implemented yet."); };

export const getWrapper: Handler = notYet;
export const putWrapper: Handler = notYet;
