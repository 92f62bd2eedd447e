// Strict-CAS preconditions (If-Match / If-None-Match), checked inside the hub so the check and
// the write are one atomic step.
import type { HubPrecondition, HubRefusal } from "./hub-api";

function tagsOf(header: string): string[] {
  return header
    .split(",")
    .map((tag) => tag.trim().replace(/^W\//, ""))
    .filter((tag) => tag !== "");
}

/** `currentEtag` is null when the object does not exist. */
export function failedPrecondition(pre: HubPrecondition | undefined, currentEtag: string | null): HubRefusal | null {
  if (!pre) return null;
  if (pre.ifNoneMatch !== undefined && currentEtag !== null) {
    const tags = tagsOf(pre.ifNoneMatch);
    if (tags.includes("*") || tags.includes(currentEtag)) {
      return { ok: false, code: "precondition_failed", message: "If-None-Match failed: the object exists." };
    }
  }
  if (pre.ifMatch !== undefined) {
    const tags = tagsOf(pre.ifMatch);
    const matches = currentEtag !== null && (tags.includes("*") || tags.includes(currentEtag));
    if (!matches) {
      return {
        ok: false,
        code: "precondition_failed",
        message: currentEtag === null ? "If-Match failed: the object does not exist." : "If-Match failed: the object has changed.",
      };
    }
  }
  return null;
}

export function refuse(code: HubRefusal["code"], message: string): HubRefusal {
  return { ok: false, code, message };
}
