// The TypeScript client against a running server (the real API and a real key), with a loopback
// proxy in front of it that injects lost answers, timeouts and 429/503s. Run by
// tests/clients/test_js_client.py, which starts both and passes their addresses here.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import {
  AuthenticationError,
  Hogsend,
  HogsendConnectionError,
  PermissionDeniedError,
  RateLimitError,
  ValidationError,
} from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/clients/test_js_client.py`);
  return value;
}

const server = env("HOGSEND_BASE_URL");
const proxy = env("HOGSEND_PROXY_URL");
const apiKey = env("HOGSEND_API_KEY");

async function faults(...queued: string[]): Promise<void> {
  await fetch(`${proxy}/__faults`, { method: "POST", body: JSON.stringify(queued) });
}

async function proxyLog(): Promise<{ fault: string; path: string; body: any }[]> {
  return (await fetch(`${proxy}/__log`)).json();
}

async function storedEvents(userId: string): Promise<string[]> {
  const response = await fetch(`${server}/v1/contacts/${encodeURIComponent(userId)}/timeline`, {
    headers: { Authorization: `Bearer ${apiKey}` },
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { items: { type: string; name: string }[] };
  return body.items.filter((item) => item.type === "event").map((item) => item.name);
}

const user = () => `user_${randomUUID().slice(0, 8)}`;

test("the seed's call stores the event for the user", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: server });
  const userId = user();

  const result = await hs.events.send({
    name: "csm.contacted",
    userId,
    eventProperties: { csm_name: "Sarah", channel: "email" },
  });

  assert.equal(result.duplicate, false);
  assert.match(result.eventId, /^[0-9a-f-]{36}$/);
  assert.deepEqual(await storedEvents(userId), ["csm.contacted"]);
});

test("a batch stores the good items and names the bad ones", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: server });
  const userId = user();

  const result = await hs.events.sendBatch([
    { name: "feature.used", userId, eventProperties: { feature: "reports" } },
    { name: "feature.used", userId, timestamp: "yesterday" },
    { name: "plan.upgraded", userId, timestamp: new Date() },
  ]);

  assert.deepEqual([result.accepted, result.duplicates, result.rejected], [2, 0, 1]);
  assert.deepEqual(result.results.map((item) => item.status), ["accepted", "rejected", "accepted"]);
  assert.equal(result.results[1].errors[0].field, "events[1].timestamp");
  assert.equal((await storedEvents(userId)).length, 2);
});

test("contacts upsert creates, then merges properties", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: server });
  const userId = user();

  const first = await hs.contacts.upsert({ userId, email: "grace@example.com", properties: { plan: "free" } });
  const second = await hs.contacts.upsert({ userId, properties: { seats: 3 } });

  assert.equal(first.created, true);
  assert.equal(second.created, false);
  assert.deepEqual(second.properties, { plan: "free", seats: 3 });
  assert.equal((await hs.contacts.get(userId)).id, first.id);
});

test("double opt-in is passed through on events and contact upserts", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: proxy });
  const before = (await proxyLog()).length;

  await hs.events.send({ name: "user.signed_up", userId: user(), userEmail: "ada@example.com", doubleOptIn: true });
  await hs.contacts.upsert({ userId: user(), email: "bob@example.com", doubleOptIn: false });

  const bodies = (await proxyLog()).slice(before).map((entry) => entry.body);
  assert.deepEqual(bodies.map((body) => body.doubleOptIn), [true, false]);
});

test("errors are typed and carry the server's message", async () => {
  await assert.rejects(
    new Hogsend({ apiKey: "hsk_nope", baseUrl: server }).events.send({ name: "a", userId: "u" }),
    (error: unknown) => error instanceof AuthenticationError && error.status === 401 && error.detail === "unknown API key",
  );
  const hs = new Hogsend({ apiKey, baseUrl: server });
  await assert.rejects(
    hs.events.send({ name: "a", userId: user(), userEmail: "not-an-email" }),
    (error: unknown) => error instanceof ValidationError && error.errors[0].field === "userEmail",
  );
  const ingestOnly = new Hogsend({ apiKey: env("HOGSEND_INGEST_ONLY_KEY"), baseUrl: server });
  await assert.rejects(
    ingestOnly.contacts.get("anyone"),
    (error: unknown) => error instanceof PermissionDeniedError && error.detail === "this API key lacks the 'read' scope",
  );
});

test("a lost answer is retried with the same key and stored once", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: proxy });
  const userId = user();
  const before = (await proxyLog()).length;
  await faults("lost");

  const result = await hs.events.send({ name: "invoice.paid", userId });

  const attempts = (await proxyLog()).slice(before);
  assert.deepEqual(attempts.map((entry) => entry.fault), ["lost", "forward"]);
  assert.equal(new Set(attempts.map((entry) => entry.body.idempotencyKey)).size, 1);
  assert.equal(result.duplicate, true);
  assert.deepEqual(await storedEvents(userId), ["invoice.paid"]);
});

test("a timed-out attempt is retried with the same key and stored once", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: proxy, timeoutMs: 500, backoffMs: 10 });
  const userId = user();
  await faults("hang");

  const result = await hs.events.send({ name: "invoice.paid", userId });

  assert.equal(result.duplicate, true);
  assert.deepEqual(await storedEvents(userId), ["invoice.paid"]);
});

test("a batch retry reuses every item's key", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: proxy });
  const [a, b] = [user(), user()];
  const before = (await proxyLog()).length;
  await faults("lost");

  const result = await hs.events.sendBatch([{ name: "a.b", userId: a }, { name: "a.b", userId: b }]);

  const [first, second] = (await proxyLog()).slice(before).map((entry) => entry.body.events);
  assert.deepEqual(
    first.map((e: any) => e.idempotencyKey),
    second.map((e: any) => e.idempotencyKey),
  );
  assert.equal(result.duplicates, 2);
  assert.deepEqual(result.results.map((item) => item.idempotencyKey), first.map((e: any) => e.idempotencyKey));
});

test("Retry-After is honoured, and a long one is raised rather than waited out", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: proxy });
  const before = (await proxyLog()).length;
  await faults("429:0", "503:0");
  assert.equal((await hs.events.send({ name: "a.b", userId: user() })).duplicate, false);
  assert.deepEqual((await proxyLog()).slice(before).map((entry) => entry.fault), ["429:0", "503:0", "forward"]);

  await faults("429:3600");
  await assert.rejects(
    hs.events.send({ name: "a.b", userId: user() }),
    (error: unknown) => error instanceof RateLimitError && error.retryAfter === 3600,
  );
  assert.equal((await proxyLog()).length, before + 4);
});

test("an unreachable server is a connection error after the retries", async () => {
  const hs = new Hogsend({ apiKey, baseUrl: "http://127.0.0.1:9", maxRetries: 2, backoffMs: 10 });
  await assert.rejects(
    hs.events.send({ name: "a.b", userId: "u" }),
    (error: unknown) => error instanceof HogsendConnectionError && /after 3 attempts/.test(error.message),
  );
});
