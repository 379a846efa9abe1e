// A small typed client of the Switchboard API, written against the types that
// openapi-typescript generates from openapi/openapi.json (client/schema.d.ts, not committed).
// It exists to be type-checked (`tsc --noEmit`, run by check.sh): when the document changes
// in a way that breaks a client, this stops compiling. It can also be run against a server:
//   SWITCHBOARD_URL=http://127.0.0.1:8080 SWITCHBOARD_EMAIL=… SWITCHBOARD_PASSWORD=… \
//     node --experimental-strip-types client/main.ts   (Node 22.6+)
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Conversation = components["schemas"]["Conversation"];
type Message = components["schemas"]["Message"];
type Problem = components["schemas"]["Problem"];

declare const process: { env: Record<string, string | undefined>; exitCode?: number };

const baseUrl = process.env["SWITCHBOARD_URL"] ?? "http://127.0.0.1:8080";

function describe(problem: Problem | undefined, status: number): string {
  if (problem === undefined) return `HTTP ${status}`;
  return `HTTP ${problem.status} ${problem.code}: ${problem.detail ?? problem.title}`;
}

async function main(): Promise<void> {
  const client = createClient<paths>({ baseUrl });

  // POST /v1/auth/login
  const login = await client.POST("/v1/auth/login", {
    body: {
      email: process.env["SWITCHBOARD_EMAIL"] ?? "admin@switchboard.local",
      password: process.env["SWITCHBOARD_PASSWORD"] ?? "",
    },
  });
  if (login.error !== undefined) {
    throw new Error(`login failed: ${describe(login.error, login.response.status)}`);
  }
  const accessToken: string = login.data.access_token;
  const expiresIn: number = login.data.expires_in;
  console.log(`signed in as ${login.data.user.email} (token valid ${expiresIn} s)`);

  const bearer: Middleware = {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${accessToken}`);
      return request;
    },
  };
  client.use(bearer);

  // GET /v1/conversations?status=open&assignee=unassigned&sort=recent_messages&limit=20
  const list = await client.GET("/v1/conversations", {
    params: {
      query: { status: "open", assignee: "unassigned", sort: "recent_messages", limit: 20 },
    },
  });
  if (list.error !== undefined) {
    throw new Error(`listing conversations failed: ${describe(list.error, list.response.status)}`);
  }
  const conversations: Conversation[] = list.data.items;
  const nextCursor: string | null | undefined = list.data.next_cursor;
  console.log(`${conversations.length} open conversation(s); more: ${nextCursor != null}`);

  const first = conversations[0];
  if (first === undefined) {
    console.log("no conversation to answer");
    return;
  }

  // POST /v1/conversations/{id}/messages, guarded against a colleague answering first.
  const sent = await client.POST("/v1/conversations/{id}/messages", {
    params: {
      path: { id: first.id },
      header: { "Idempotency-Key": `api-check-${first.id}-${Date.now()}` },
    },
    body: {
      kind: "message",
      body: "Thanks for writing in, we are looking into it.",
      if_last_message_id: first.last_message_id ?? null,
    },
  });
  if (sent.error !== undefined) {
    throw new Error(`sending failed: ${describe(sent.error, sent.response.status)}`);
  }
  const message: Message = sent.data;
  console.log(`sent message ${message.id} in conversation ${message.conversation_id}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
