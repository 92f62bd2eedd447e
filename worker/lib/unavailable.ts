// D1 trouble in auth storage is the server's, not the client's: it becomes 503 (retry), never a
// 500, and the driver's message (which may quote a statement) never reaches the client.
import { HttpError } from "./errors";

export async function orUnavailable<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof HttpError) throw err;
    console.error(JSON.stringify({ level: "error", msg: `${what} failed`, error: err instanceof Error ? err.name : "unknown" }));
    throw new HttpError("unavailable", `${what} is temporarily unavailable; retry shortly.`);
  }
}
