import { connect } from 'node:net';

/**
 * A minimal RESP2 client: one connection, a pipelined batch of commands, binary-safe replies.
 * Enough for seeding and fingerprinting without spawning redis-cli per key.
 */

export class RespError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespError';
  }
}

export type RespReply = Buffer | number | null | RespError | RespReply[];

export interface RespTarget {
  host: string;
  port: number;
  password?: string | undefined;
}

type Parsed = { value: RespReply; next: number } | undefined;

function parseReply(buffer: Buffer, offset: number): Parsed {
  if (offset >= buffer.length) return undefined;
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: Buffer.from(line), next: afterLine };
    case '-':
      return { value: new RespError(line), next: afterLine };
    case ':':
      return { value: Number(line), next: afterLine };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next: afterLine };
      if (buffer.length < afterLine + length + 2) return undefined;
      return { value: buffer.subarray(afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: afterLine };
      const items: RespReply[] = [];
      let next = afterLine;
      for (let i = 0; i < count; i += 1) {
        const item = parseReply(buffer, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`RESP: unexpected reply type ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: readonly (string | Buffer | number)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const data = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${data.length}\r\n`), data, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Sends AUTH (if a password is set), SELECT db, then the commands, pipelined, and returns one reply
 * per command. Error replies come back as RespError values (not thrown); AUTH/SELECT errors throw.
 */
export function respCommands(
  target: RespTarget,
  commands: readonly (readonly (string | Buffer | number)[])[],
  options: { db?: number; timeoutMs?: number } = {},
): Promise<RespReply[]> {
  const prelude: (readonly (string | Buffer | number)[])[] = [];
  if (target.password !== undefined) prelude.push(['AUTH', target.password]);
  if (options.db !== undefined && options.db !== 0) prelude.push(['SELECT', options.db]);
  const all = [...prelude, ...commands];
  const where = `redis ${target.host}:${target.port}${options.db ? ` db ${options.db}` : ''}`;
  return new Promise((resolve, reject) => {
    if (all.length === 0) {
      resolve([]);
      return;
    }
    const socket = connect({ host: target.host, port: target.port });
    const replies: RespReply[] = [];
    let pending: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(replies.slice(prelude.length));
    };
    socket.setTimeout(options.timeoutMs ?? 15_000, () => finish(new Error(`${where}: timed out waiting for replies`)));
    socket.once('error', (error) => finish(new Error(`${where}: ${error.message}`, { cause: error })));
    socket.once('close', () => finish(new Error(`${where}: connection closed after ${replies.length}/${all.length} replies`)));
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let offset = 0;
      try {
        for (;;) {
          const parsed = parseReply(pending, offset);
          if (parsed === undefined) break;
          const index = replies.length;
          replies.push(parsed.value);
          offset = parsed.next;
          if (index < prelude.length && parsed.value instanceof RespError) {
            finish(new Error(`${where}: ${String(prelude[index]?.[0])} failed: ${parsed.value.message}`));
            return;
          }
        }
      } catch (error) {
        finish(error as Error);
        return;
      }
      pending = pending.subarray(offset);
      if (replies.length === all.length) finish();
    });
    socket.write(Buffer.concat(all.map(encodeCommand)));
  });
}

/** One command; an error reply throws. */
export async function respCommand(
  target: RespTarget,
  args: readonly (string | Buffer | number)[],
  options: { db?: number; timeoutMs?: number } = {},
): Promise<RespReply> {
  const [reply] = await respCommands(target, [args], options);
  if (reply instanceof RespError) {
    throw new Error(`redis ${target.host}:${target.port}: ${String(args[0])} failed: ${reply.message}`);
  }
  return reply ?? null;
}

/** A reply as text (bulk/status strings decoded as UTF-8). */
export function replyText(reply: RespReply): string {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (reply === null) return '';
  if (reply instanceof RespError) throw reply;
  if (typeof reply === 'number') return String(reply);
  return reply.map(replyText).join('\n');
}
