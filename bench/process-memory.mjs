// Memory of the workerd process behind `wrangler dev`, read from /proc (Linux only).
import { readdirSync, readFileSync } from "node:fs";

function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses; fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[1]);
  } catch {
    return -1;
  }
}

function commandOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** The workerd processes descended from `rootPid` (wrangler dev starts one). */
export function findWorkerdPids(rootPid) {
  if (!rootPid) return [];
  const pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number);
  const found = [];
  for (const pid of pids) {
    if (!commandOf(pid).startsWith("workerd")) continue;
    let p = pid;
    for (let depth = 0; depth < 16 && p > 1; depth++) {
      p = parentOf(p);
      if (p === rootPid) {
        found.push(pid);
        break;
      }
    }
  }
  return found;
}

/** `{ rssKiB, hwmKiB }` of one process, or null once it is gone. */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
  } catch {
    return null;
  }
}

/** Samples VmRSS every `intervalMs` until stopped; returns the peak seen (KiB). */
export function sampleRss(pids, intervalMs = 25) {
  let peak = 0;
  const take = () => {
    let total = 0;
    for (const pid of pids) total += memoryOf(pid)?.rssKiB ?? 0;
    peak = Math.max(peak, total);
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}
