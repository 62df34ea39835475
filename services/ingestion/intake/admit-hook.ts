import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../../../shared/errors/error-handler.js';
import { intakeOverloaded } from '../problems.js';
import type { IntakeBatches } from './batches.js';

/** Letters up to this size (the whole request) feed the latency bound; larger ones are mostly transfer time. */
const LATENCY_SIGNAL_MAX_BYTES = 1024 * 1024;

/** 503 while the intake's queue stands above its latency target (see admission.ts). */
export const standingQueue = () => intakeOverloaded('The intake has as many letters in flight as it answers within its latency target');

/** Gives an admitted request's place back (once, whichever of handler and connection ends first). */
const admitted = new WeakMap<FastifyRequest, () => void>();

/**
 * The first onRequest hook of a letter route: admits the request under the adaptive bound
 * (admission.ts) or refuses it with 503 before anything else is done for it. At three times
 * capacity most requests are refused, so a refusal must cost next to nothing: it comes before the
 * token check and before a byte of the body is read (the unread body is discarded by Node and the
 * connection kept, see shared/app/unread-body.ts). The place is given back when the handler
 * ends (`leaveAdmission`) or, for a request that never reaches it (no token, 415, a client gone),
 * when its connection's response closes.
 */
export function admitLetter(intake: IntakeBatches) {
  // Made once and answered from the hook, not thrown: at three times capacity refusals are most
  // answers, and each thrown Problem cost a stack trace and Fastify's error dispatch (together
  // about a tenth of the CPU there, perf). The answer is the one the error handler would give.
  const refusal = standingQueue();
  return async function admit(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const ticket = intake.admission.enter();
    if (ticket === undefined) {
      intake.shed('latency');
      return sendProblem(reply, refusal);
    }
    const measured = Number(request.headers['content-length'] ?? Infinity) <= LATENCY_SIGNAL_MAX_BYTES;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      intake.admission.leave(ticket, measured);
    };
    admitted.set(request, leave);
    reply.raw.once('close', leave);
    return undefined;
  };
}

/** The handler is done with an admitted request (its answer is decided). */
export function leaveAdmission(request: FastifyRequest): void {
  admitted.get(request)?.();
}
