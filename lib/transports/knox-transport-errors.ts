import { HttpException } from '@nestjs/common';

/** The status and message of a Knox HTTP error, to answer it on another transport. */
export function knoxErrorPayload(
  error: unknown,
): { status: number; message: string } | null {
  if (!(error instanceof HttpException)) {
    return null;
  }
  const response = error.getResponse() as string | { message?: unknown };
  const message =
    typeof response === 'string'
      ? response
      : typeof response?.message === 'string'
        ? response.message
        : error.message;
  return { status: error.getStatus(), message };
}
