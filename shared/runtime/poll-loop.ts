/** Runs `round` until it finds nothing to do, then again every `pollMs`, until stopped. */
export function startPollLoop(round: () => Promise<number>, pollMs: number, logger: { warn(obj: unknown, msg?: string): void }, failure: string) {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        while (!stopped && (await round()) > 0) {
          /* drain */
        }
      } catch (err) {
        logger.warn({ err }, failure);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollMs);
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await loop;
    },
  };
}
