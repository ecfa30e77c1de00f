import { useEffect, useState } from 'react';

/** The injected clock, re-read every `intervalMs` while `active` (for live elapsed times). */
export function useNow(clock: () => Date, active: boolean, intervalMs = 1000): Date {
  const [now, setNow] = useState(() => clock());
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => setNow(clock()), intervalMs);
    return () => clearInterval(timer);
  }, [clock, active, intervalMs]);
  return now;
}
