// Minimal reproduction for the close-visibility question (README "Known runtime behaviour"):
// one hibernatable WebSocket per connection in a Durable Object, closed by the server from an RPC
// (as the hub does on revocation). `?reply=0` makes webSocketClose not call close() back.
import { DurableObject } from "cloudflare:workers";

interface Env {
  HUB: DurableObjectNamespace<Hub>;
}

export class Hub extends DurableObject<Env> {
  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    const reply = new URL(request.url).searchParams.get("reply") !== "0";
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].serializeAttachment({ reply });
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  closeAll(code: number, reason: string): number {
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) ws.close(code, reason);
    return sockets.length;
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    const { reply } = ws.deserializeAttachment() as { reply: boolean };
    if (!reply) return;
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.searchParams.get("mode") === "plain") {
      // Control: a plain (non-hibernatable) socket in the Worker itself, closed the same way.
      const pair = new WebSocketPair();
      pair[1].accept();
      setTimeout(() => pair[1].close(4403, "Session revoked."), 200);
      return new Response(null, { status: 101, webSocket: pair[0] });
    }
    const hub = env.HUB.get(env.HUB.idFromName("one"));
    if (new URL(request.url).pathname === "/close") return Response.json({ closed: await hub.closeAll(4403, "Session revoked.") });
    return hub.fetch(request);
  },
} satisfies ExportedHandler<Env>;
