import { Text, useInput } from 'ink';
import { useRef, useState } from 'react';
import { applyTypedChunk } from '../typed-input.js';

/**
 * A one-line text field that applies every character of every chunk in order (typed-input.ts), so
 * keys typed quickly are never dropped and backspaces that arrive together are all applied. The
 * value lives in a ref (no stale closure between two chunks of the same tick).
 */
export function TypedField({ active, onSubmit, placeholder }: { active: boolean; onSubmit: (text: string) => void; placeholder?: string }): React.JSX.Element {
  const value = useRef('');
  const [shown, setShown] = useState('');
  useInput(
    (input, key) => {
      if (key.escape) return; // the screen's Esc
      const r = applyTypedChunk(value.current, input, key);
      value.current = r.value;
      setShown(r.value);
      if (r.submit) onSubmit(r.value);
    },
    { isActive: active },
  );
  return (
    <Text>
      {shown === '' && placeholder ? <Text dimColor>{placeholder}</Text> : shown}
      {active ? <Text inverse> </Text> : null}
    </Text>
  );
}
