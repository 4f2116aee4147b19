/**
 * The dispatch log's timeline: when each phase of this dispatch ended, in ms since it started,
 * so that "why is a hit slow?" has an answer. One dispatcher process handles one invocation,
 * so one timeline per process.
 * @module
 */

/** Phase name to ms since {@linkcode startPhases}. */
export const phases: Record<string, number> = {};
let phaseClock = 0;

/** Starts the timeline at `now` (performance.now()). */
export function startPhases(now: number): void {
  phaseClock = now;
}

/** Records that the phase `name` ended now. */
export function phaseDone(name: string): void {
  phases[name] = Math.round((performance.now() - phaseClock) * 10) / 10;
}
