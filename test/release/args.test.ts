/** The release command line, and the one line it answers bad input and a client's failure with. */
import { parseArgs, registryProblem, UsageError } from '../../release/args';
import { lastLine } from '../../release/registry';

test.each(['127.0.0.1:5000/knawd', 'localhost:5000', 'registry.example.com/team/knawd', 'ghcr.io/knawd', 'r.example.com:443/a__b/c-d.e'])('accepts %s', (ref) => {
  expect(registryProblem(ref)).toBeUndefined();
  expect(parseArgs(['--registry', ref]).registry).toBe(ref);
});

test.each([
  ['oci://ghcr.io/knawd', /has a scheme/],
  ['ghcr.io/Knawd', /path component 'Knawd'/],
  ['ghcr.io/knawd/', /path component ''/],
  ['ghcr.io/knawd:v1', /path component 'knawd:v1'/],
  ['ghcr.io/knawd@sha256:00', /path component/],
  ['-bad-.io/knawd', /does not start with a host/],
  ['host:99999/knawd', /port 99999/],
  ['', /does not start with a host/],
])('refuses %s', (ref, message) => {
  expect(registryProblem(ref)).toMatch(message);
  expect(() => parseArgs(['--registry', ref])).toThrow(UsageError);
});

test('options: a missing value, an unknown flag, files that do not exist, exclusive flags; each one line', () => {
  const problems = [
    [],
    ['--registry'],
    ['--registry', 'r.io/k', '--push'],
    ['--registry', 'r.io/k', '--sign-key', '/nonexistent/cosign.key'],
    ['--registry', 'r.io/k', '--ca-file', '/nonexistent/ca.pem'],
    ['--registry', 'r.io/k', '--plain-http', '--ca-file', __filename],
    ['--registry', 'r.io/k', '--sign-key-url', 'https://x/k.pub'],
  ].map((argv) => {
    try {
      parseArgs(argv);
      return 'accepted';
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      return (error as Error).message;
    }
  });
  expect(problems).toEqual([
    expect.stringMatching(/^--registry is required; usage: npm run release/),
    expect.stringMatching(/^--registry needs a value/),
    expect.stringMatching(/^unknown argument '--push'/),
    '--sign-key /nonexistent/cosign.key: no such file',
    '--ca-file /nonexistent/ca.pem: no such file',
    '--plain-http and --ca-file exclude each other: a CA is for TLS',
    '--sign-key-url needs --sign-key',
  ]);
  for (const p of problems) expect(p).not.toContain('\n');
});

test('the flags parse into what they say', () => {
  expect(parseArgs(['--registry', '127.0.0.1:5000/k', '--plain-http', '--sign-key', __filename, '--sign-key-url', 'https://example.com/cosign.pub'])).toEqual({
    registry: '127.0.0.1:5000/k',
    plainHttp: true,
    signKey: __filename,
    caFile: undefined,
    signKeyUrl: 'https://example.com/cosign.pub',
    record: undefined,
  });
});

test("a client's complaint in one line: the last meaningful line, skopeo's logrus message unwrapped", () => {
  expect(lastLine('WARNING: x\nerror one\n\nerror two: denied\n')).toBe('error two: denied');
  expect(lastLine('time="2026-12-06T20:05:56Z" level=fatal msg="writing blob: initiating layer upload: StatusCode: 405, Method not allowed\\n"\n')).toBe(
    'writing blob: initiating layer upload: StatusCode: 405, Method not allowed',
  );
  expect(lastLine('')).toBe('no output');
});
