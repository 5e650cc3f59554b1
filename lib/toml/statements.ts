/**
 * How a TOML document defines its tables, which a parsed object no longer tells: whether a table came from a
 * `[header]`, from dotted keys, or is an inline `{ ... }` value. An inline table can never be extended by a
 * `[header]` below it (containerd refuses the file); whether a table made by dotted keys can is where TOML
 * versions and parsers disagree, so the patchers leave both alone rather than depend on the parser.
 *
 * The scanner reads documents that @iarna/toml has already accepted (or, for k3s' rendered config, that are
 * TOML apart from duplicated tables); it is not a validator.
 */
import { ConfigPatchError } from './errors';

export type Statement =
  | { readonly kind: 'table' | 'array-table'; readonly path: readonly string[]; readonly line: number }
  | {
      readonly kind: 'key';
      /** Path of the enclosing table, then the dotted key's parts. */
      readonly path: readonly string[];
      /** How many leading parts of `path` come from the enclosing table header. */
      readonly tableDepth: number;
      readonly inlineTable: boolean;
      readonly line: number;
      /** Where the value's text starts and ends (offsets into the document). */
      readonly valueStart: number;
      readonly valueEnd: number;
    };

const BARE_KEY = /[A-Za-z0-9_-]/;
const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\u001b', '"': '"', '\\': '\\' };

/** Lists the document's statements; `source` names the document in the error for text it cannot read. */
export function scanStatements(text: string, source: string): Statement[] {
  return new Scanner(text, source).statements();
}

class Scanner {
  private pos = 0;
  private line = 1;

  constructor(
    private readonly text: string,
    private readonly source: string,
  ) {}

  statements(): Statement[] {
    const found: Statement[] = [];
    let table: readonly string[] = [];
    for (;;) {
      this.skipBlank(true);
      if (this.pos >= this.text.length) return found;
      const line = this.line;
      if (this.text[this.pos] === '[') {
        const isArray = this.text[this.pos + 1] === '[';
        this.pos += isArray ? 2 : 1;
        table = this.key(isArray ? ']]' : ']');
        this.pos += isArray ? 2 : 1;
        found.push({ kind: isArray ? 'array-table' : 'table', path: table, line });
      } else {
        const key = this.key('=');
        this.pos += 1;
        this.skipBlank(false);
        const inlineTable = this.text[this.pos] === '{';
        const valueStart = this.pos;
        this.value();
        found.push({ kind: 'key', path: [...table, ...key], tableDepth: table.length, inlineTable, line, valueStart, valueEnd: this.pos });
      }
    }
  }

  /** Reads a dotted key up to (not past) `terminator`. */
  private key(terminator: string): string[] {
    const parts: string[] = [];
    for (;;) {
      this.skipSpaces();
      parts.push(this.keyPart());
      this.skipSpaces();
      if (this.text.startsWith(terminator, this.pos)) return parts;
      this.expect('.');
    }
  }

  private keyPart(): string {
    const c = this.text[this.pos];
    if (c === '"') return this.basicString();
    if (c === "'") return this.literalString();
    const start = this.pos;
    while (this.pos < this.text.length && BARE_KEY.test(this.text[this.pos])) this.pos++;
    if (this.pos === start) this.fail('a key');
    return this.text.slice(start, this.pos);
  }

  private value(): void {
    const c = this.text[this.pos];
    if (this.text.startsWith('"""', this.pos) || this.text.startsWith("'''", this.pos)) this.multilineString();
    else if (c === '"') this.basicString();
    else if (c === "'") this.literalString();
    else if (c === '[') this.array();
    else if (c === '{') this.inlineTable();
    else this.scalar();
  }

  private array(): void {
    this.pos++;
    for (;;) {
      this.skipBlank(true);
      if (this.text[this.pos] === ']') {
        this.pos++;
        return;
      }
      this.value();
      this.skipBlank(true);
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== ']') this.fail("',' or ']'");
    }
  }

  private inlineTable(): void {
    this.pos++;
    for (;;) {
      this.skipBlank(true);
      if (this.text[this.pos] === '}') {
        this.pos++;
        return;
      }
      this.key('=');
      this.pos++;
      this.skipSpaces();
      this.value();
      this.skipBlank(true);
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== '}') this.fail("',' or '}'");
    }
  }

  /** Numbers, booleans and date-times: they run to the next delimiter (a date-time may hold a space). */
  private scalar(): void {
    const start = this.pos;
    while (this.pos < this.text.length && !/[,\]}#\r\n]/.test(this.text[this.pos])) this.pos++;
    if (this.text.slice(start, this.pos).trim() === '') this.fail('a value');
  }

  private basicString(): string {
    let out = '';
    this.pos++;
    for (;;) {
      const c = this.text[this.pos++];
      if (c === undefined || c === '\n') this.fail('a closing \'"\'');
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.text[this.pos++];
      if (e === 'u' || e === 'U') {
        const digits = e === 'u' ? 4 : 8;
        out += String.fromCodePoint(parseInt(this.text.slice(this.pos, this.pos + digits), 16));
        this.pos += digits;
      } else if (e in ESCAPES) {
        out += ESCAPES[e];
      } else {
        this.fail('a valid escape');
      }
    }
  }

  private literalString(): string {
    const end = this.text.indexOf("'", this.pos + 1);
    if (end < 0) this.fail("a closing \"'\"");
    const value = this.text.slice(this.pos + 1, end);
    this.pos = end + 1;
    return value;
  }

  private multilineString(): void {
    const quote = this.text.slice(this.pos, this.pos + 3);
    this.pos += 3;
    for (;;) {
      if (this.pos >= this.text.length) this.fail(`a closing ${quote}`);
      const c = this.text[this.pos];
      if (quote === '"""' && c === '\\') {
        this.advance(2);
      } else if (this.text.startsWith(quote, this.pos)) {
        // Up to two quote characters right before the delimiter belong to the content.
        let end = this.pos + 3;
        while (end < this.pos + 5 && this.text[end] === quote[0]) end++;
        this.pos = end;
        return;
      } else {
        this.advance(1);
      }
    }
  }

  private advance(count: number): void {
    for (let i = 0; i < count && this.pos < this.text.length; i++) {
      if (this.text[this.pos] === '\n') this.line++;
      this.pos++;
    }
  }

  private skipSpaces(): void {
    while (this.text[this.pos] === ' ' || this.text[this.pos] === '\t') this.pos++;
  }

  /** Skips spaces, comments and, where the grammar allows them (`newlines`), line breaks. */
  private skipBlank(newlines: boolean): void {
    for (;;) {
      this.skipSpaces();
      const c = this.text[this.pos];
      if (c === '#') {
        while (this.pos < this.text.length && this.text[this.pos] !== '\n') this.pos++;
      } else if (newlines && (c === '\n' || c === '\r')) {
        this.advance(1);
      } else {
        return;
      }
    }
  }

  private expect(c: string): void {
    if (this.text[this.pos] !== c) this.fail(`'${c}'`);
    this.pos++;
  }

  private fail(expected: string): never {
    throw new ConfigPatchError(`${this.source} is not valid TOML: expected ${expected} on line ${this.line}`);
  }
}
