import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

export interface TerminalSize {
  columns: number;
  rows: number;
}

const fallback: TerminalSize = { columns: 80, rows: 24 };

function read(stdout: NodeJS.WriteStream): TerminalSize {
  const columns = typeof stdout.columns === 'number' && stdout.columns > 0 ? stdout.columns : fallback.columns;
  const rows = typeof stdout.rows === 'number' && stdout.rows > 0 ? stdout.rows : fallback.rows;
  return { columns, rows };
}

/** The terminal's size, updated on resize (screens lay out for 80x24 and use more when there is more). */
export function useTerminalSize(): TerminalSize {
  const { stdout } = useStdout();
  const [size, setSize] = useState<TerminalSize>(() => read(stdout));
  useEffect(() => {
    const onResize = (): void => setSize(read(stdout));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}
