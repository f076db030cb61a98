/**
 * Hogsend's TypeScript client: send events and upsert contacts over the HTTP API.
 *
 *   const hs = new Hogsend({ apiKey: process.env.HOGSEND_API_KEY!, baseUrl: "http://localhost:8000" });
 *   await hs.events.send({ name: "csm.contacted", userId: "user_123", eventProperties: { csm_name: "Sarah" } });
 */

import {
  APIError,
  type FieldError,
  HogsendConnectionError,
  HogsendTimeoutError,
  RateLimitError,
  ServiceUnavailableError,
  errorFor,
} from "./errors.js";

export * from "./errors.js";

export const VERSION = "0.1.0";
// "Come back later": the server said so (429, 503) or a proxy did (502, 504).
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

export interface HogsendOptions {
  /** A secret key (hsk_...) from `manage.py create_api_key`. */
  apiKey: string;
  baseUrl?: string;
  /** Per attempt, in milliseconds (default 10,000). */
  timeoutMs?: number;
  /** Retries after a 429/502/503/504, a timeout or a dropped connection (default 3). */
  maxRetries?: number;
  /** The first backoff step in milliseconds (default 500), doubling, with full jitter. */
  backoffMs?: number;
  /** A Retry-After or backoff longer than this (default 30,000 ms) is not waited out but raised. */
  maxRetryWaitMs?: number;
  fetch?: typeof fetch;
}

export interface EventInput {
  name: string;
  userId: string;
  userEmail?: string;
  eventProperties?: Record<string, unknown>;
  contactProperties?: Record<string, unknown>;
  /** ISO 8601 with an offset, or a Date; now if absent. */
  timestamp?: string | Date;
  /** Generated if absent; retries of the call reuse it. */
  idempotencyKey?: string;
  /** A contact this event creates must confirm by email first (default: the server's setting). */
  doubleOptIn?: boolean;
}

export interface EventAccepted {
  eventId: string;
  contactId: string;
  duplicate: boolean;
  exitedRuns: string[];
}

export interface BatchItemResult {
  index: number;
  status: "accepted" | "duplicate" | "rejected";
  eventId: string | null;
  contactId: string | null;
  exitedRuns: string[];
  errors: FieldError[];
  /** The key this item was sent with. */
  idempotencyKey: string;
}

export interface BatchResult {
  accepted: number;
  duplicates: number;
  rejected: number;
  results: BatchItemResult[];
}

export interface ContactInput {
  userId: string;
  email?: string;
  properties?: Record<string, unknown>;
  /** A contact this call creates must confirm by email first (default: the server's setting). */
  doubleOptIn?: boolean;
}

export interface Contact {
  id: string;
  userId: string;
  email: string;
  properties: Record<string, unknown>;
  subscribed: boolean;
  categoryOptOuts: string[];
  createdAt: string;
  updatedAt: string;
  /** True when this upsert created the contact. */
  created?: boolean;
}

interface Answer {
  status: number;
  body: any;
}

function newIdempotencyKey(): string {
  return `js_${globalThis.crypto.randomUUID().replaceAll("-", "")}`;
}

function eventBody(event: EventInput): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: event.name,
    userId: event.userId,
    idempotencyKey: event.idempotencyKey ?? newIdempotencyKey(),
  };
  if (event.userEmail !== undefined) body.userEmail = event.userEmail;
  if (event.eventProperties) body.eventProperties = event.eventProperties;
  if (event.contactProperties) body.contactProperties = event.contactProperties;
  if (event.timestamp !== undefined) {
    body.timestamp = event.timestamp instanceof Date ? event.timestamp.toISOString() : event.timestamp;
  }
  if (event.doubleOptIn !== undefined) body.doubleOptIn = event.doubleOptIn;
  return body;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function retryAfterSeconds(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Hogsend {
  readonly events: Events;
  readonly contacts: Contacts;
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoffMs: number;
  private readonly maxRetryWaitMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: HogsendOptions) {
    if (!options?.apiKey) {
      throw new TypeError("apiKey is required: a secret key (hsk_...) from `manage.py create_api_key`");
    }
    this.baseUrl = (options.baseUrl ?? "http://localhost:8000").replace(/\/+$/, "");
    this.headers = {
      Authorization: `Bearer ${options.apiKey}`,
      Accept: "application/json",
      "Content-Type": "application/json",
      "User-Agent": `hogsend-js/${VERSION}`,
    };
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetries = options.maxRetries ?? 3;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? 30_000;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.events = new Events(this);
    this.contacts = new Contacts(this);
  }

  /** Milliseconds to wait before the next attempt, or null to give up. */
  private delay(attempt: number, response: Response | null): number | null {
    if (attempt >= this.maxRetries) return null;
    const advised = response ? retryAfterSeconds(response.headers.get("Retry-After")) : null;
    if (advised !== null) {
      const ms = advised * 1000;
      return ms <= this.maxRetryWaitMs ? ms : null;
    }
    return Math.random() * Math.min(this.maxRetryWaitMs, this.backoffMs * 2 ** attempt);
  }

  /** @internal One call: the same body (and so the same idempotency keys) on every attempt. */
  async request(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      let response: Response | null = null;
      let failure: unknown = null;
      try {
        response = await this.fetchImpl(this.baseUrl + path, {
          method,
          headers: this.headers,
          body: payload,
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        failure = error;
      }
      if (response && !RETRY_STATUSES.has(response.status)) return parse(response);
      const wait = this.delay(attempt, response);
      if (wait === null) {
        if (response) return parse(response);
        const timedOut = failure instanceof Error && (failure.name === "TimeoutError" || failure.name === "AbortError");
        const what = `${method} ${path}`;
        if (timedOut) throw new HogsendTimeoutError(`${what} timed out after ${attempt + 1} attempts`, { cause: failure });
        throw new HogsendConnectionError(`${what}: cannot reach ${this.baseUrl} after ${attempt + 1} attempts`, {
          cause: failure,
        });
      }
      // Drain an answer we will not use so its connection can be reused.
      await response?.arrayBuffer().catch(() => undefined);
      await sleep(wait);
    }
  }
}

async function parse(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) {
    if (body === null || typeof body !== "object") {
      throw new APIError(response.status, "the server answered with a body that is not a JSON object");
    }
    return { status: response.status, body };
  }
  const detail = typeof body?.detail === "string" ? body.detail : text.slice(0, 500) || response.statusText;
  const headers = Object.fromEntries(response.headers.entries());
  const Kind = errorFor(response.status);
  const error = new Kind(response.status, detail, Array.isArray(body?.errors) ? body.errors : [], body, headers);
  if (error instanceof RateLimitError || error instanceof ServiceUnavailableError) {
    error.retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
  }
  throw error;
}

function toContact(body: any, created?: boolean): Contact {
  const contact: Contact = {
    id: body.id,
    userId: body.userId,
    email: body.email,
    properties: body.properties ?? {},
    subscribed: body.subscribed,
    categoryOptOuts: body.categoryOptOuts ?? [],
    createdAt: body.createdAt,
    updatedAt: body.updatedAt,
  };
  if (created !== undefined) contact.created = created;
  return contact;
}

export class Events {
  constructor(private readonly client: Hogsend) {}

  /** Send one event; a repeated idempotency key answers with the first result (`duplicate: true`). */
  async send(event: EventInput): Promise<EventAccepted> {
    const { body } = await this.client.request("POST", "/v1/events", eventBody(event));
    return { eventId: body.eventId, contactId: body.contactId, duplicate: body.duplicate, exitedRuns: body.exitedRuns ?? [] };
  }

  /** Send up to 1,000 events in one request; a bad item is rejected alone with the fields to fix. */
  async sendBatch(events: EventInput[]): Promise<BatchResult> {
    if (!events.length) throw new TypeError("sendBatch needs at least one event");
    const items = events.map(eventBody);
    const { body } = await this.client.request("POST", "/v1/events/batch", { events: items });
    return {
      accepted: body.accepted,
      duplicates: body.duplicates,
      rejected: body.rejected,
      results: (body.results as any[]).map((item) => ({
        index: item.index,
        status: item.status,
        eventId: item.eventId ?? null,
        contactId: item.contactId ?? null,
        exitedRuns: item.exitedRuns ?? [],
        errors: item.errors ?? [],
        idempotencyKey: items[item.index].idempotencyKey as string,
      })),
    };
  }
}

export class Contacts {
  constructor(private readonly client: Hogsend) {}

  /** Create or update a contact by your user id; properties merge into what is stored. */
  async upsert(contact: ContactInput): Promise<Contact> {
    const body: Record<string, unknown> = { userId: contact.userId };
    if (contact.email !== undefined) body.email = contact.email;
    if (contact.properties) body.properties = contact.properties;
    if (contact.doubleOptIn !== undefined) body.doubleOptIn = contact.doubleOptIn;
    const answer = await this.client.request("PUT", "/v1/contacts", body);
    return toContact(answer.body, answer.status === 201);
  }

  /** A contact by Hogsend's id or your user id (needs the `read` scope). */
  async get(key: string): Promise<Contact> {
    const answer = await this.client.request("GET", `/v1/contacts/${encodeURIComponent(key)}`);
    return toContact(answer.body);
  }
}

export default Hogsend;
