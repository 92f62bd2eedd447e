// The admin dashboard: GET <prefix>/admin/ui and its two static assets. They hold no data and no
// secret, so they need no token; the page's script sends the typed admin token to the admin API.
// The CSP allows only this origin's script, style and API: no inline script, no inline event
// handlers, no form submission (a form that fell back to submitting would put the token in a URL).
import type { Handler } from "../request-context";
import { DASHBOARD_CSS, DASHBOARD_HTML } from "../dashboard/page";
import { DASHBOARD_JS } from "../dashboard/app-js";

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function asset(body: string, contentType: string): Handler {
  return () =>
    new Response(body, {
      status: 200,
      headers: {
        "Content-Type": contentType,
        "Content-Security-Policy": DASHBOARD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
      },
    });
}

export const page = asset(DASHBOARD_HTML, "text/html; charset=utf-8");
export const script = asset(DASHBOARD_JS, "text/javascript; charset=utf-8");
export const styles = asset(DASHBOARD_CSS, "text/css; charset=utf-8");
