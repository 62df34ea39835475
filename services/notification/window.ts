/**
 * The daytime window: alerts go out between `start` and `end` local time in `timeZone`
 * (Europe/Oslo 09:00-21:00 by default). An alert due outside it waits for the next opening.
 */
export interface DaytimeWindow {
  /** Minutes after local midnight. */
  start: number;
  end: number;
  timeZone: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  minutes: number;
  seconds: number;
}

export function localTime(at: Date, timeZone: string): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, minutes: parts.hour! * 60 + parts.minute!, seconds: parts.second! };
}

/** The instant when the local clock in `timeZone` shows the given date and minute (DST-safe to the minute). */
export function instantOf(year: number, month: number, day: number, minutes: number, timeZone: string): Date {
  const wall = Date.UTC(year, month - 1, day, 0, minutes);
  let guess = wall;
  // Two rounds settle the offset, also across a DST change between guess and answer.
  for (let i = 0; i < 2; i++) {
    const lt = localTime(new Date(guess), timeZone);
    const shown = Date.UTC(lt.year, lt.month - 1, lt.day, 0, lt.minutes, lt.seconds);
    guess += wall - shown;
  }
  return new Date(guess);
}

export function inWindow(at: Date, w: DaytimeWindow): boolean {
  const { minutes } = localTime(at, w.timeZone);
  return minutes >= w.start && minutes < w.end;
}

/** `at` itself when it falls inside the window, else the next opening of the window. */
export function nextInWindow(at: Date, w: DaytimeWindow): Date {
  const lt = localTime(at, w.timeZone);
  if (lt.minutes >= w.start && lt.minutes < w.end) return at;
  if (lt.minutes < w.start) return instantOf(lt.year, lt.month, lt.day, w.start, w.timeZone);
  // After the end: the next local day's start (Date.UTC rolls over month and year ends).
  const next = new Date(Date.UTC(lt.year, lt.month - 1, lt.day + 1));
  return instantOf(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), w.start, w.timeZone);
}
