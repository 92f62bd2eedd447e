// Response headers set after a handler answered (CORS, the request id).

/**
 * Applies `change` to a response's headers: in place when the Worker built the response (its
 * headers are mutable), else on a copy (a response from fetch(), a hub's refusal, has immutable
 * headers). Rebuilding a response around a streamed body costs on every object GET, so the
 * pipeline's steps edit in place and copy only when they must.
 */
export function withHeaderChanges(response: Response, change: (headers: Headers) => void): Response {
  try {
    change(response.headers);
    return response;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    const copy = new Response(response.body, response);
    change(copy.headers);
    return copy;
  }
}
