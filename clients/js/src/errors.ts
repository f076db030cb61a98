/** Typed errors. An `APIError` carries the server's own message (`detail`) and field errors. */

export interface FieldError {
  field: string;
  message: string;
}

export class HogsendError extends Error {
  override name = "HogsendError";
}

/** The server could not be reached (refused, reset, DNS), after every retry. */
export class HogsendConnectionError extends HogsendError {
  override name = "HogsendConnectionError";
}

/** The server did not answer within the timeout, after every retry. */
export class HogsendTimeoutError extends HogsendConnectionError {
  override name = "HogsendTimeoutError";
}

/** The server answered with an error status; `detail` says what is wrong and how to fix it. */
export class APIError extends HogsendError {
  override name = "APIError";
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly body: unknown = undefined,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status}: ${detail}`);
  }
}

export class BadRequestError extends APIError {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIError {
  override name = "AuthenticationError";
}
export class PermissionDeniedError extends APIError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIError {
  override name = "NotFoundError";
}
export class ConflictError extends APIError {
  override name = "ConflictError";
}
export class PayloadTooLargeError extends APIError {
  override name = "PayloadTooLargeError";
}
export class ValidationError extends APIError {
  override name = "ValidationError";
}
export class ServerError extends APIError {
  override name = "ServerError";
}

/** 429 after every retry; `retryAfter` is the server's Retry-After in seconds. */
export class RateLimitError extends APIError {
  override name = "RateLimitError";
  retryAfter: number | null = null;
}

/** 503 after every retry (the server's database is unavailable). */
export class ServiceUnavailableError extends APIError {
  override name = "ServiceUnavailableError";
  retryAfter: number | null = null;
}

const BY_STATUS: Record<number, typeof APIError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: ValidationError,
  429: RateLimitError,
  503: ServiceUnavailableError,
};

export function errorFor(status: number): typeof APIError {
  return BY_STATUS[status] ?? (status >= 500 ? ServerError : APIError);
}
