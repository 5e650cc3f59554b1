import { blockText, lineEnding, putBlock, removeBlock } from '../../lib/toml/block';
import { ConfigPatchError } from '../../lib/toml';

const LINES = ['[a.b]', '  c = 1'];

describe('managed block', () => {
  it.each([
    ['', '# BEGIN knawd-deployer managed block: runtime h (remove with: knawd-installer remove)\n[a.b]\n  c = 1\n# END knawd-deployer managed block: runtime h\n'],
    ['x = 1\n', 'x = 1\n\n# BEGIN knawd-deployer managed block: runtime h (remove with: knawd-installer remove)\n[a.b]\n  c = 1\n# END knawd-deployer managed block: runtime h\n'],
    ['x = 1', 'x = 1\n\n# BEGIN knawd-deployer managed block: runtime h (remove with: knawd-installer remove)\n[a.b]\n  c = 1\n# END knawd-deployer managed block: runtime h'],
    ['x = 1\r\ny = 2', 'x = 1\r\ny = 2\r\n\r\n# BEGIN knawd-deployer managed block: runtime h (remove with: knawd-installer remove)\r\n[a.b]\r\n  c = 1\r\n# END knawd-deployer managed block: runtime h'],
  ])('appends to %j in the file’s own style and removes it exactly', (original, expected) => {
    const added = putBlock(original, 'h', LINES);
    expect(added).toBe(expected);
    expect(removeBlock(added, 'h')).toBe(original);
    expect(blockText(added, 'h')).toMatch(/^# BEGIN .*# END knawd-deployer managed block: runtime h$/s);
  });

  it('replaces a block in place, keeping what a user added after it', () => {
    const added = putBlock('x = 1\n', 'h', LINES) + '# added later\n';
    const replaced = putBlock(added, 'h', ['[a.b]', '  c = 2']);
    expect(replaced).toBe(added.replace('c = 1', 'c = 2'));
    expect(removeBlock(replaced, 'h')).toBe('x = 1\n# added later\n');
  });

  it('tells blocks of different handlers apart, also by prefix', () => {
    const both = putBlock(putBlock('x = 1\n', 'h', LINES), 'h2', LINES);
    expect(removeBlock(removeBlock(both, 'h'), 'h2')).toBe('x = 1\n');
    expect(blockText(both, 'h')).not.toContain('h2');
  });

  it.each([
    ['two BEGIN lines', (block: string) => block + block.split('\n')[0] + '\n', /marker lines 1, 4, 5/],
    ['END before BEGIN', (block: string) => block.split('\n').reverse().join('\n'), /marker lines/],
    ['no END', (block: string) => block.replace(/# END.*\n/, ''), /marker lines 1\)/],
  ])('refuses a damaged block: %s', (_, damage, lines) => {
    const damaged = damage(putBlock('', 'h', LINES));
    expect(() => removeBlock(damaged, 'h')).toThrow(ConfigPatchError);
    expect(() => removeBlock(damaged, 'h')).toThrow(lines);
  });

  it('uses the line ending of the first line', () => {
    expect(lineEnding('a\r\nb\n')).toBe('\r\n');
    expect(lineEnding('a\nb\r\n')).toBe('\n');
    expect(lineEnding('a')).toBe('\n');
  });
});
